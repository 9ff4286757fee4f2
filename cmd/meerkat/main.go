// Command meerkat is the Meerkat XMPP server and its administration tool.
//
//	meerkat [serve] [flags]          run the server (the default)
//	meerkat user add JID [PASSWORD]  create an account (password prompted or read from stdin)
//	meerkat user passwd JID [PASSWORD]
//	meerkat user remove JID
//	meerkat user list [DOMAIN]
//	meerkat offline count JID | --all [DOMAIN]
//	meerkat offline purge JID | --all [DOMAIN]
//	meerkat config print             the default configuration, commented
//	meerkat config check FILE        validate a configuration file
//	meerkat version
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/modules/version"
	"github.com/meerkat-xmpp/meerkat/internal/server"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func main() {
	// SIGINT and SIGTERM stop the server gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code; serve runs
// until ctx is done.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stderr)
	case "user":
		err = user(args, stdin, stdout, stderr)
	case "offline":
		err = offline(args, stdout, stderr)
	case "config":
		err = configCmd(args, stdout)
	case "version":
		fmt.Fprintf(stdout, "meerkat %s\n", versionString())
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "meerkat: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "meerkat: %v\n", err)
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  meerkat [serve] [flags]            run the server (flags: meerkat serve -h)
  meerkat user add JID [PASSWORD]    create an account; the password is prompted
                                     for, or read from stdin, when omitted
  meerkat user passwd JID [PASSWORD] change a password
  meerkat user remove JID            delete an account and all its data
  meerkat user list [DOMAIN]         list accounts
  meerkat offline count JID          the number of offline messages stored for JID
  meerkat offline count --all [DOMAIN]
                                     the accounts with offline messages, and how many
  meerkat offline purge JID          delete the offline messages of JID
  meerkat offline purge --all [DOMAIN]
                                     delete every offline message (of DOMAIN)
  meerkat config print               print the default configuration, commented
  meerkat config check FILE          validate a configuration file
  meerkat version                    print the version
`)
}

func versionString() string {
	v := version.Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

// common holds the flags shared by serve and user.
type common struct {
	configFile string
	dataDir    string
	domains    stringList
	c2sAddr    string
	tlsAddr    string
	httpAddr   string
	httpsAddr  string
	logLevel   string
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (c *common) register(fs *flag.FlagSet, serverFlags bool) {
	fs.StringVar(&c.configFile, "config", "", "configuration file (TOML); see meerkat config print")
	fs.StringVar(&c.dataDir, "data", "", "data directory (default meerkat-data)")
	fs.Var(&c.domains, "domain", "domain to serve; repeat for several (default localhost)")
	if serverFlags {
		fs.StringVar(&c.c2sAddr, "c2s-addr", "", "address for STARTTLS client connections (default :5222)")
		fs.StringVar(&c.tlsAddr, "tls-addr", "", "address for direct TLS client connections (default :5223)")
		fs.StringVar(&c.httpAddr, "http-addr", "", "address of the HTTP listener (default :5280)")
		fs.StringVar(&c.httpsAddr, "https-addr", "", "address of the HTTPS listener (default :5281)")
		fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error")
	}
}

// load reads the configuration file, if any, and applies the flags.
func (c *common) load(fs *flag.FlagSet) (config.Config, error) {
	cfg := config.Default()
	if c.configFile != "" {
		var err error
		if cfg, err = config.Load(c.configFile); err != nil {
			return cfg, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["data"] {
		cfg.DataDir = c.dataDir
	}
	if len(c.domains) > 0 {
		cfg.Domains = c.domains
	}
	if set["c2s-addr"] {
		cfg.C2S.Addr = c.c2sAddr
	}
	if set["tls-addr"] {
		cfg.C2S.TLSAddr = c.tlsAddr
	}
	if set["http-addr"] {
		cfg.HTTP.Addr = c.httpAddr
	}
	if set["https-addr"] {
		cfg.HTTP.TLSAddr = c.httpsAddr
	}
	if set["log-level"] {
		cfg.LogLevel = c.logLevel
	}
	return cfg, cfg.Validate()
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level, _ := config.ParseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serveConfig resolves the configuration of `meerkat serve ARGS`: the
// defaults, then the file of --config, then the flags.
func serveConfig(args []string, stderr io.Writer) (config.Config, common, error) {
	fs := flag.NewFlagSet("meerkat serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, true)
	if err := fs.Parse(args); err != nil {
		return config.Config{}, c, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, c, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := c.load(fs)
	return cfg, c, err
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, c, err := serveConfig(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	a := srv.Addrs()
	log.Info("Meerkat is running", "version", versionString(), "domains", cfg.Domains, "data", cfg.DataDir,
		"starttls", addrString(a.StartTLS), "direct_tls", addrString(a.DirectTLS), "http", addrString(a.HTTP), "https", addrString(a.HTTPS))
	self := "meerkat"
	if strings.Contains(os.Args[0], "go-build") {
		self = "go run ./cmd/meerkat"
	}
	dataFlag := ""
	if c.configFile != "" {
		dataFlag = " --config " + c.configFile
	} else if cfg.DataDir != config.Default().DataDir {
		dataFlag = " --data " + cfg.DataDir
	}
	log.Info(fmt.Sprintf("add a user with: %s user add%s alice@%s", self, dataFlag, cfg.Domains[0]))
	log.Info(fmt.Sprintf("then connect any XMPP client as alice@%s (the certificate is self-signed: accept it in the client)", cfg.Domains[0]))
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown was not clean", "error", err)
	}
	log.Info("stopped")
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

func user(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("user: add, passwd, remove or list?")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("meerkat user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.load(fs)
	if err != nil {
		return err
	}
	ctx := context.Background()
	// Through the running server when there is one, so that a removed
	// account's sessions are closed and the modules are told; else on the
	// database directly.
	accounts, err := openAccounts(ctx, cfg)
	if err != nil {
		return err
	}
	defer accounts.close()
	pos := fs.Args()
	switch sub {
	case "add", "passwd":
		if len(pos) < 1 || len(pos) > 2 {
			return fmt.Errorf("user %s: usage: meerkat user %s JID [PASSWORD]", sub, sub)
		}
		j, err := server.AccountJID(pos[0], cfg.Domains)
		if err != nil {
			return err
		}
		password := ""
		if len(pos) == 2 {
			password = pos[1]
		} else if password, err = readPassword(stdin, stderr); err != nil {
			return err
		}
		if sub == "add" {
			if err := accounts.add(ctx, j, password); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created %s\n", j)
			return nil
		}
		if err := accounts.passwd(ctx, j, password); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "changed the password of %s\n", j)
	case "remove":
		if len(pos) != 1 {
			return errors.New("user remove: usage: meerkat user remove JID")
		}
		j, err := server.AccountJID(pos[0], cfg.Domains)
		if err != nil {
			return err
		}
		if err := accounts.remove(ctx, j); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", j)
	case "list":
		if len(pos) > 1 {
			return errors.New("user list: usage: meerkat user list [DOMAIN]")
		}
		domain := ""
		if len(pos) == 1 {
			domain = pos[0]
		}
		users, err := accounts.list(ctx, domain)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
	default:
		return fmt.Errorf("user: unknown command %q (add, passwd, remove or list)", sub)
	}
	return nil
}

// offline counts or deletes stored offline messages (XEP-0160). It works
// while the server runs: both use the same SQLite database.
func offline(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("offline: count or purge?")
	}
	sub, args := args[0], args[1:]
	if sub != "count" && sub != "purge" {
		return fmt.Errorf("offline: unknown command %q (count or purge)", sub)
	}
	fs := flag.NewFlagSet("meerkat offline "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, false)
	all := fs.Bool("all", false, "every account, or every account of DOMAIN")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.load(fs)
	if err != nil {
		return err
	}
	pos := fs.Args()
	if *all && len(pos) > 1 || !*all && len(pos) != 1 {
		return fmt.Errorf("offline %s: usage: meerkat offline %s JID, or meerkat offline %s --all [DOMAIN]", sub, sub, sub)
	}
	ctx := context.Background()
	store, err := server.OpenStorage(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	msgs, ok := store.(storage.OfflineStore)
	if !ok {
		return fmt.Errorf("offline: the %s storage backend does not store offline messages", cfg.Storage.Backend)
	}

	if *all {
		domain := ""
		if len(pos) == 1 {
			d, err := jid.Parse(pos[0])
			if err != nil || !d.IsBare() || d.Local() != "" || !slices.Contains(cfg.Domains, d.Domain()) {
				return fmt.Errorf("%s is not a served domain (served: %v)", pos[0], cfg.Domains)
			}
			domain = d.Domain()
		}
		if sub == "count" {
			counts, err := msgs.OfflineCounts(ctx, domain)
			if err != nil {
				return err
			}
			for _, c := range counts {
				fmt.Fprintf(stdout, "%s\t%d\n", c.User, c.Count)
			}
			return nil
		}
		n, err := msgs.PurgeAllOffline(ctx, domain)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %d offline messages\n", n)
		return nil
	}

	j, err := server.AccountJID(pos[0], cfg.Domains)
	if err != nil {
		return err
	}
	if ok, err := store.AccountExists(ctx, j); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%s does not exist", j)
	}
	if sub == "count" {
		n, err := msgs.OfflineCount(ctx, j)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, n)
		return nil
	}
	n, err := msgs.PurgeOffline(ctx, j)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted %d offline messages of %s\n", n, j)
	return nil
}

// readPassword prompts on a terminal (without echo) or reads one line
// from stdin.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password given on stdin")
	}
	return line, nil
}

func configCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("config: print or check FILE?")
	}
	switch args[0] {
	case "print":
		return config.Print(stdout, config.Default())
	case "check":
		if len(args) != 2 {
			return errors.New("config check: usage: meerkat config check FILE")
		}
		cfg, err := config.Load(args[1])
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			return fmt.Errorf("%s:\n%w", args[1], err)
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return nil
	}
	return fmt.Errorf("config: unknown command %q (print or check)", args[0])
}
