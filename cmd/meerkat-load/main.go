// Command meerkat-load is Meerkat's load generator: it runs a named
// scenario with N users against any XMPP server (Meerkat, ejabberd,
// Prosody…) and measures time to deliver, login times and IQ round
// trips in HDR histograms. See docs/load.md.
//
//	meerkat-load run --scenario one-to-one --addr 127.0.0.1:5222 --users 1000 --rate 1 --out r.json
//	meerkat-load merge -o all.json part1.json part2.json   # results of processes that shared a run
//	meerkat-load table r.json
//	meerkat-load compare meerkat.json ejabberd.json prosody.json
//	meerkat-load plot -o ttd.png r.json…
//	meerkat-load scenarios
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/meerkat-xmpp/meerkat/internal/load"
	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
	"github.com/meerkat-xmpp/meerkat/internal/load/relay"
	"github.com/meerkat-xmpp/meerkat/internal/load/report"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
)

func main() {
	// SIGINT/SIGTERM end a run early (with its results) or the relay.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "meerkat-load:", err)
		os.Exit(1)
	}
}

// logOutput is where the relay logs (tests read its address there).
var logOutput io.Writer = os.Stderr

const usage = `usage: meerkat-load <command> [flags]

commands:
  run        run a scenario (meerkat-load run -h for the flags)
  merge      merge result files of processes that shared a run: merge -o out.json in.json…
  table      print the human table of result files
  compare    print a Markdown comparison of result files, the first against each other
  plot       write a PNG of TTD percentiles and throughput: plot -o out.png in.json…
  relay      serve the baseline TLS relay (no XML): relay --addr 127.0.0.1:17222 [--cert f --key f]
  scenarios  list the scenarios
`

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "run":
		return runScenario(ctx, args[1:])
	case "merge":
		return merge(args[1:])
	case "table":
		return eachResult(args[1:], func(r *metrics.Result) error { return report.WriteTable(os.Stdout, r) })
	case "compare":
		rs, err := readAll(args[1:])
		if err != nil {
			return err
		}
		return report.Compare(os.Stdout, rs)
	case "plot":
		fs := flag.NewFlagSet("plot", flag.ContinueOnError)
		out := fs.String("o", "load.png", "PNG file to write")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		rs, err := readAll(fs.Args())
		if err != nil {
			return err
		}
		return report.Plot(*out, rs...)
	case "relay":
		return serveRelay(ctx, args[1:])
	case "scenarios":
		for _, n := range load.Names() {
			s, _ := load.Lookup(n)
			fmt.Printf("%-12s %s\n", n, s.Doc)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func runScenario(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c load.Config
	fs.StringVar(&c.Scenario, "scenario", "one-to-one", "scenario: "+strings.Join(load.Names(), ", "))
	fs.StringVar(&c.Label, "label", "", "name of the target in reports (meerkat, ejabberd, prosody…)")
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:5222", "server address host:port; for websocket the wss:// URL")
	fs.StringVar(&c.Domain, "domain", "localhost", "XMPP domain")
	fs.StringVar(&c.Transport, "transport", xmppc.StartTLS, "transport: "+strings.Join(xmppc.Transports, ", "))
	fs.StringVar(&c.Mechanism, "mech", "", "SASL mechanism (SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512, PLAIN); default: the strongest SCRAM offered")
	fs.BoolVar(&c.SM, "sm", false, "enable stream management (XEP-0198)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "server process id: sample its CPU and RSS from /proc")
	fs.IntVar(&c.Users, "users", 100, "users in the whole run")
	fs.IntVar(&c.From, "users-from", 0, "first user this process drives")
	fs.IntVar(&c.To, "users-to", 0, "end (exclusive) of the users this process drives; 0: --users")
	fs.StringVar(&c.UserPattern, "user-pattern", "load%d", "user names (local parts), with %d for the user's number")
	fs.StringVar(&c.PasswordPattern, "password-pattern", "loadpass%d", "passwords, with %d")
	fs.StringVar(&c.Provision, "provision", "none", "how users are created: none (they exist), register (in-band, XEP-0077), cmd (--provision-cmd per user)")
	fs.StringVar(&c.ProvisionCmd, "provision-cmd", "", "shell command creating a user: {user} {domain} {jid} {password}; the password is also on stdin")
	fs.Float64Var(&c.RampRate, "ramp", 0, "logins started per second (0: as fast as --concurrency allows)")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "logins in flight at most")
	fs.IntVar(&c.Sources, "sources", 4, "source addresses 127.0.0.1…127.0.0.N for loopback targets (ephemeral ports per address)")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "sending phase (login: how long sessions stay online)")
	fs.Float64Var(&c.Rate, "rate", 1, "stanzas per second per user")
	steps := fs.String("steps", "", "per-user rates to step through, comma-separated, --step-duration each (replaces --rate and --duration)")
	fs.DurationVar(&c.StepDuration, "step-duration", 10*time.Second, "duration of each step")
	fs.DurationVar(&c.StepStop, "step-stop", 0, "stop stepping after a step whose p99 TTD exceeded this (0: run every step)")
	fs.IntVar(&c.Peers, "peers", 5, "peers each user sends to (one-to-one, presence, mam)")
	fs.IntVar(&c.BodyBytes, "body", 100, "message body size in bytes")
	fs.IntVar(&c.RoomSize, "room-size", 10, "muc-light: members per room")
	fs.StringVar(&c.MUCService, "muc-service", "", "muc-light: service domain (default muclight.<domain>)")
	fs.Float64Var(&c.MAMShare, "mam-share", 0.1, "mam: share of users querying the archive")
	fs.DurationVar(&c.Churn, "churn", 10*time.Second, "presence: each user reconnects about this often")
	fs.DurationVar(&c.Drain, "drain", 5*time.Second, "wait at most this long for stanzas in flight at the end")
	fs.DurationVar(&c.Settle, "settle", 3*time.Second, "login: idle time before the server's memory is sampled")
	keyCache := fs.String("key-cache", "", "file keeping the users' SCRAM salted passwords between runs (read at start, written at the end)")
	out := fs.String("out", "", "write the result as JSON to this file")
	plotFile := fs.String("plot", "", "write a PNG plot of TTD and throughput to this file")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while running")
	quiet := fs.Bool("quiet", false, "no progress line")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *steps != "" {
		for _, s := range strings.Split(*steps, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return fmt.Errorf("--steps: %w", err)
			}
			c.Steps = append(c.Steps, v)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	conns := c.Users // this process's connections
	if c.To > 0 {
		conns = c.To - c.From
	}
	if n, err := raiseFileLimit(); err != nil {
		c.Log.Warn("cannot raise the open files limit", "error", err)
	} else if n < uint64(conns)+100 {
		c.Log.Warn("the open files limit is below the number of connections", "limit", n)
	}
	c.Keys = &xmppc.KeyCache{}
	if *keyCache != "" {
		if err := c.Keys.Load(*keyCache); err != nil {
			return err
		}
	}
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	if !*quiet {
		c.Progress = func(line string) {
			if tty {
				fmt.Fprint(os.Stderr, "\r\033[K"+line)
			} else {
				fmt.Fprintln(os.Stderr, line)
			}
		}
	}
	var srv *http.Server
	if *metricsAddr != "" {
		// The recorder exists only inside Execute: serve it once it is
		// created, through the Started hook.
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		c.Started = func(rec *metrics.Recorder) {
			mux.Handle("/metrics", rec.Handler(map[string]string{"scenario": c.Scenario, "target": c.Label}))
		}
		go srv.Serve(ln)
		defer srv.Close()
		c.Log.Info("serving Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	res, err := load.Execute(ctx, c)
	if tty && !*quiet {
		fmt.Fprintln(os.Stderr)
	}
	if *keyCache != "" {
		if serr := c.Keys.Save(*keyCache); serr != nil {
			c.Log.Warn("cannot save the key cache", "error", serr)
		}
	}
	c.Log.Debug("SCRAM keys derived", "pbkdf2", c.Keys.Derivations())
	if res == nil {
		return err
	}
	if err != nil {
		c.Log.Error("run ended early", "error", err)
	}
	if *out != "" {
		if werr := res.WriteFile(*out); werr != nil {
			return werr
		}
	}
	if *plotFile != "" {
		if perr := report.Plot(*plotFile, res); perr != nil {
			return perr
		}
	}
	if terr := report.WriteTable(os.Stdout, res); terr != nil {
		return terr
	}
	return err
}

// serveRelay runs the baseline relay until ctx ends (SIGINT, SIGTERM).
func serveRelay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:17222", "address to listen on")
	certFile := fs.String("cert", "", "PEM certificate (default: a self-signed RSA 2048 one for localhost)")
	keyFile := fs.String("key", "", "PEM key of --cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cert tls.Certificate
	var err error
	if *certFile != "" {
		cert, err = tls.LoadX509KeyPair(*certFile, *keyFile)
	} else {
		cert, err = relay.SelfSigned()
	}
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	log := slog.New(slog.NewTextHandler(logOutput, nil))
	log.Info("relay listening", "addr", ln.Addr().String())
	return relay.New(log).Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}})
}

// raiseFileLimit raises the soft limit of open files to the hard limit
// (one connection is one file) and returns it.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return l.Cur, nil
}

func merge(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	out := fs.String("o", "", "write the merged result here (default: print the table only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, err := readAll(fs.Args())
	if err != nil {
		return err
	}
	m, err := metrics.Merge(rs...)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := m.WriteFile(*out); err != nil {
			return err
		}
	}
	return report.WriteTable(os.Stdout, m)
}

func readAll(paths []string) ([]*metrics.Result, error) {
	if len(paths) == 0 {
		return nil, errors.New("no result files")
	}
	var rs []*metrics.Result
	for _, p := range paths {
		r, err := metrics.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func eachResult(paths []string, fn func(*metrics.Result) error) error {
	rs, err := readAll(paths)
	if err != nil {
		return err
	}
	for i, r := range rs {
		if i > 0 {
			fmt.Println()
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
