package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
)

// runMainEnv makes the test binary behave as the meerkat binary: the
// tests below start it as a child process (the os.Args[0] re-exec
// pattern), so that signals, exit codes and the process's limits are
// real.
const runMainEnv = "MEERKAT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// process is a meerkat started as a child process.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *processLog
	done chan struct{}
	err  error // of Wait, once done is closed
}

// startProcess runs `meerkat ARGS` in dir; wrap, if set, is a shell
// command line run before (`ulimit -S -n 256`, say), exec'ing meerkat.
func startProcess(t *testing.T, dir, wrap string, args ...string) *process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if wrap != "" {
		cmd = exec.Command("/bin/sh", append([]string{"-c", wrap + ` && exec "$0" "$@"`, self}, args...)...)
	} else {
		cmd = exec.Command(self, args...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p := &process{t: t, cmd: cmd, log: newProcessLog(), done: make(chan struct{})}
	cmd.Stderr = p.log
	cmd.Stdout = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		p.log.close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// running waits for the "Meerkat is running" line and returns it; it
// fails the test if the process ends first.
func (p *process) running() string {
	p.t.Helper()
	line, err := p.log.waitLine("Meerkat is running", 60*time.Second)
	if err != nil {
		p.t.Fatalf("meerkat did not start: %v\n%s", err, p.log)
	}
	return line
}

// stop sends sig and waits for the process to exit; it returns how long
// that took and fails the test if the exit code is not 0 or it takes more
// than limit.
func (p *process) stop(sig os.Signal, limit time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("meerkat did not exit within %v of %v:\n%s", limit, sig, p.log)
	}
	took := time.Since(start)
	if p.err != nil {
		p.t.Fatalf("meerkat exited with %v after %v:\n%s", p.err, sig, p.log)
	}
	return took
}

// field returns the value of key in a log line (slog's text format).
func field(line, key string) string {
	m := regexp.MustCompile(`(?:^| )` + regexp.QuoteMeta(key) + `=("(?:[^"\\]|\\.)*"|\S*)`).FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	if v, err := strconv.Unquote(m[1]); err == nil {
		return v
	}
	return m[1]
}

// processLog collects a process's output and lets a test wait for a line.
type processLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
	closed  bool
}

func newProcessLog() *processLog { return &processLog{changed: make(chan struct{})} }

func (l *processLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *processLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *processLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLine returns the first complete line containing s.
func (l *processLog) waitLine(s string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for line := range strings.Lines(l.buf.String()) {
			if strings.HasSuffix(line, "\n") && strings.Contains(line, s) {
				l.mu.Unlock()
				return strings.TrimSuffix(line, "\n"), nil
			}
		}
		closed, ch := l.closed, l.changed
		l.mu.Unlock()
		if closed {
			return "", fmt.Errorf("no line with %q before the process ended", s)
		}
		select {
		case <-ch:
		case <-timer.C:
			return "", fmt.Errorf("no line with %q within %v", s, timeout)
		}
	}
}

// lines returns the lines containing s.
func (l *processLog) lines(s string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, s) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return out
}

// server returns a story server for the addresses of a "Meerkat is
// running" line.
func runningServer(domain, line string) *story.External {
	addrs := map[story.Transport]string{}
	if a := field(line, "starttls"); a != "off" {
		addrs[story.TCP] = a
	}
	if a := field(line, "direct_tls"); a != "off" {
		addrs[story.DirectTLS] = a
	}
	return &story.External{DomainName: domain, Addrs: addrs, TLS: &tls.Config{InsecureSkipVerify: true}}
}

// TestSignals: SIGTERM (then SIGINT) to a real meerkat process closes
// every stream with <system-shutdown/>, flushes storage and exits 0
// within a few seconds; what was written just before the signal is
// there after a restart, the archived copy written in the background
// (XEP-0313) included.
func TestSignals(t *testing.T) {
	data := t.TempDir()
	for _, u := range []string{"alice@localhost", "bob@localhost"} {
		if code, _, errOut := meerkat(t, "", "user", "add", "--data", data, u, "pw-"+u); code != 0 {
			t.Fatal(errOut)
		}
	}
	args := []string{"serve", "--data", data, "--c2s-addr", "127.0.0.1:0", "--tls-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--https-addr", "", "--log-level", "info"}
	ctx := context.Background()
	account := func(name string) story.Account {
		return story.Account{Localpart: name, Password: "pw-" + name + "@localhost"}
	}

	p := startProcess(t, t.TempDir(), "", args...)
	srv := runningServer("localhost", p.running())
	alice, err := story.Connect(ctx, t, srv, account("alice"), story.Options{Name: "alice"})
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.log)
	}
	direct, err := story.Connect(ctx, t, srv, account("alice"), story.Options{Name: "alice2", Transport: story.DirectTLS})
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.log)
	}
	alice.Send(story.Chat(story.RawAddr("bob@localhost"), "just before the signal"))
	alice.IQ(story.Ping(nil)) // bob's offline copy is stored now; alice's archive is written in the background
	took := p.stop(syscall.SIGTERM, 5*time.Second)
	alice.Expect(story.IsStreamError("system-shutdown"))
	direct.Expect(story.IsStreamError("system-shutdown"))
	t.Logf("SIGTERM to exit: %v", took)
	for _, want := range []string{"shutting down", "stopped"} {
		if len(p.log.lines(want)) != 1 {
			t.Errorf("the log lacks %q:\n%s", want, p.log)
		}
	}
	for _, level := range []string{"level=WARN", "level=ERROR"} {
		if lines := p.log.lines(level); len(lines) > 0 {
			t.Errorf("%s:\n%s", level, strings.Join(lines, "\n"))
		}
	}

	// Restart on the same data.
	p = startProcess(t, t.TempDir(), "", args...)
	srv = runningServer("localhost", p.running())
	bob, err := story.Connect(ctx, t, srv, account("bob"), story.Options{Name: "bob"})
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.log)
	}
	story.AssertStanza(t, bob.Expect(story.IsChat("just before the signal")), story.IsFrom(alice.JID()))
	alice, err = story.Connect(ctx, t, srv, account("alice"), story.Options{Name: "alice", NoPresence: true})
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.log)
	}
	if got := archivedBodies(t, alice); len(got) != 1 || got[0] != "just before the signal" {
		t.Errorf("alice's archive after the restart: %q", got)
	}
	p.stop(syscall.SIGINT, 5*time.Second)
	alice.Expect(story.IsStreamError("system-shutdown"))
	bob.Expect(story.IsStreamError("system-shutdown"))
}

// archivedBodies queries the client's whole archive (XEP-0313) and returns
// the bodies.
func archivedBodies(t *testing.T, c *story.Client) []string {
	t.Helper()
	q := story.MAM(story.MAMQuery{QueryID: "all"})
	c.Send(q)
	var bodies []string
	for {
		el := c.Expect(story.Or(story.IsIQResult(q.Attr("id")), story.IsIQError(q.Attr("id")), story.IsMessage()))
		if el.Name == "iq" {
			story.AssertStanza(t, el, story.IsIQResult(q.Attr("id")))
			return bodies
		}
		msg := el.Child("result", story.NSMAM).Child("forwarded", stanza.NSForward).Child("message", stanza.NSClient)
		bodies = append(bodies, msg.ChildText("body", stanza.NSClient))
	}
}

// TestOpenFilesLimit: a meerkat started with a low soft limit of open
// files runs with the hard limit, and says how many connections that
// allows. (Go's runtime raises the limit too, since Go 1.19, so this is
// the binary's behaviour; internal/server TestRaiseFileLimit tests the
// server's own raising.)
func TestOpenFilesLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max <= 256 || lim.Max == math.MaxUint64 {
		t.Skipf("hard limit %d", lim.Max)
	}
	p := startProcess(t, t.TempDir(), "ulimit -S -n 256", "serve", "--data", t.TempDir(), "--c2s-addr", "127.0.0.1:0",
		"--tls-addr", "", "--http-addr", "", "--https-addr", "")
	p.running()
	line, err := p.log.waitLine("open files limit", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`level=INFO msg="open files limit" limit=%d connections=%d`, lim.Max, lim.Max-64)
	if !strings.HasSuffix(line, want) {
		t.Errorf("log line %q, want it to end with %q", line, want)
	}
	// The process itself, as the kernel sees it.
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
	if err != nil {
		t.Logf("no /proc: %v", err)
	} else if re := regexp.MustCompile(`Max open files +(\d+) +(\d+)`).FindSubmatch(limits); re == nil || string(re[1]) != strconv.FormatUint(lim.Max, 10) {
		t.Errorf("limits of the process:\n%s", limits)
	}
	p.stop(syscall.SIGTERM, 5*time.Second)
}

// TestDefaults: `meerkat` and `meerkat serve` without flags serve
// localhost on 5222 (STARTTLS), 5223 (direct TLS), 5280 (HTTP) and 5281
// (HTTPS), with data in ./meerkat-data.
func TestDefaults(t *testing.T) {
	// run passes the arguments after "serve" (or all of them when the
	// first is a flag, or none) to serve: none here.
	cfg, _, err := serveConfig(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("domains=%v data=%s starttls=%s tls=%s http=%s https=%s require_tls=%v log=%s db=%s",
		cfg.Domains, cfg.DataDir, cfg.C2S.Addr, cfg.C2S.TLSAddr, cfg.HTTP.Addr, cfg.HTTP.TLSAddr, cfg.C2S.RequireTLS, cfg.LogLevel, cfg.SQLitePath())
	want := "domains=[localhost] data=meerkat-data starttls=:5222 tls=:5223 http=:5280 https=:5281 require_tls=true log=info db=" +
		filepath.Join("meerkat-data", "meerkat.db")
	if got != want {
		t.Errorf("defaults:\n%s\nwant:\n%s", got, want)
	}
	// Each flag replaces one default, and only that one.
	cfg, _, err = serveConfig([]string{"--data", "/srv/m", "--domain", "a.example", "--domain", "b.example", "--c2s-addr", "127.0.0.1:1",
		"--tls-addr", "", "--http-addr", "127.0.0.1:2", "--https-addr", "127.0.0.1:3", "--log-level", "debug"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got = fmt.Sprintf("%v %s %q %q %q %q %s", cfg.Domains, cfg.DataDir, cfg.C2S.Addr, cfg.C2S.TLSAddr, cfg.HTTP.Addr, cfg.HTTP.TLSAddr, cfg.LogLevel)
	if want := `[a.example b.example] /srv/m "127.0.0.1:1" "" "127.0.0.1:2" "127.0.0.1:3" debug`; got != want {
		t.Errorf("flags: %s, want %s", got, want)
	}
	if _, _, err := serveConfig([]string{"extra"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Errorf("extra argument: %v", err)
	}
}

// TestNoArguments runs `meerkat` with no arguments in an empty directory
// as a user would, on the real default ports; it is skipped when one of
// them is taken.
func TestNoArguments(t *testing.T) {
	for _, port := range []string{"5222", "5223", "5280", "5281"} {
		ln, err := net.Listen("tcp", ":"+port)
		if err != nil {
			t.Skipf("port %s is taken: %v", port, err)
		}
		ln.Close()
	}
	dir := t.TempDir()
	p := startProcess(t, dir, "")
	line, err := p.log.waitLine("Meerkat is running", 60*time.Second)
	if err != nil {
		if strings.Contains(p.log.String(), "address already in use") {
			t.Skipf("a default port was taken meanwhile:\n%s", p.log)
		}
		t.Fatalf("%v\n%s", err, p.log)
	}
	anyAddr := `(\[::\]|0\.0\.0\.0):`
	for key, re := range map[string]string{
		"domains": `^\[localhost\]$`, "data": `^meerkat-data$`,
		"starttls": anyAddr + "5222$", "direct_tls": anyAddr + "5223$", "http": anyAddr + "5280$", "https": anyAddr + "5281$",
	} {
		if v := field(line, key); !regexp.MustCompile(re).MatchString(v) {
			t.Errorf("%s=%q in %q", key, v, line)
		}
	}
	// How to add a user, for the binary installed as meerkat (this test
	// binary is in a go-build directory, as with go run).
	if _, err := p.log.waitLine(`msg="add a user with: go run ./cmd/meerkat user add alice@localhost"`, 30*time.Second); err != nil {
		t.Errorf("%v\n%s", err, p.log)
	}
	for _, f := range []string{"meerkat.db", "tls/cert.pem", "tls/key.pem", "admin.addr", "admin.token"} {
		if _, err := os.Stat(filepath.Join(dir, "meerkat-data", f)); err != nil {
			t.Errorf("./meerkat-data: %v", err)
		}
	}
	// It serves: a user added with the CLI (through the running server's
	// admin API) logs in on 5222 and 5223.
	data := filepath.Join(dir, "meerkat-data")
	if code, out, errOut := meerkat(t, "", "user", "add", "--data", data, "alice@localhost", "pw"); code != 0 {
		t.Fatalf("user add: %s %s", out, errOut)
	}
	srv := &story.External{DomainName: "localhost", Addrs: map[story.Transport]string{story.TCP: "localhost:5222", story.DirectTLS: "localhost:5223"}}
	for _, tr := range []story.Transport{story.TCP, story.DirectTLS} {
		c, err := story.Connect(context.Background(), t, srv, story.Account{Localpart: "alice", Password: "pw"}, story.Options{Transport: tr, NoPresence: true})
		if err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		c.IQ(story.Ping(story.RawAddr("localhost")))
	}
	p.stop(syscall.SIGTERM, 5*time.Second)
}

// TestServeConfigFile: `meerkat serve --config FILE` serves the domain and
// ports of the file, and only those; the user commands find the running
// server with the same --config.
func TestServeConfigFile(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "meerkat.toml")
	doc := fmt.Sprintf(`domains = ["chat.example.test"]
data_dir = %q
log_level = "info"

[c2s]
starttls_addr = "127.0.0.1:0"
tls_addr = "127.0.0.1:0"

[http]
addr = "127.0.0.1:0"
tls_addr = ""
`, data)
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := newProcessLog()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", file}, strings.NewReader(""), &bytes.Buffer{}, log)
		log.close()
	}()
	line, err := log.waitLine("Meerkat is running", 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if got := field(line, "domains"); got != "[chat.example.test]" {
		t.Errorf("domains=%s", got)
	}
	if got := field(line, "data"); got != data {
		t.Errorf("data=%s", got)
	}
	if got := field(line, "https"); got != "off" {
		t.Errorf("https=%s", got)
	}
	for _, key := range []string{"starttls", "direct_tls", "http"} {
		if v := field(line, key); !strings.HasPrefix(v, "127.0.0.1:") || v == "127.0.0.1:0" {
			t.Errorf("%s=%s", key, v)
		}
	}
	if _, err := log.waitLine(`msg="add a user with: go run ./cmd/meerkat user add --config `+file+` alice@chat.example.test"`, 30*time.Second); err != nil {
		t.Errorf("%v\n%s", err, log)
	}
	if code, out, errOut := meerkat(t, "", "user", "add", "--config", file, "carl@chat.example.test", "pw"); code != 0 || out != "created carl@chat.example.test\n" {
		t.Fatalf("user add: %d %q %q", code, out, errOut)
	}
	srv := runningServer("chat.example.test", line)
	for _, tr := range []story.Transport{story.TCP, story.DirectTLS} {
		carl, err := story.Connect(ctx, t, srv, story.Account{Localpart: "carl", Password: "pw"}, story.Options{Transport: tr, NoPresence: true})
		if err != nil {
			t.Fatalf("%s: %v\n%s", tr, err, log)
		}
		if got := carl.JID().Bare().String(); got != "carl@chat.example.test" {
			t.Errorf("bound %s", got)
		}
		carl.IQ(story.Ping(story.RawAddr("chat.example.test")))
	}
	// localhost, the default domain, is not served.
	r, err := story.DialRaw(ctx, srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.OpenStream("localhost"); err == nil {
		t.Fatal("localhost served")
	}
	if err := r.ExpectStreamError("host-unknown"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d\n%s", code, log)
	}
}

// TestServeConfigFileErrors: a bad file stops serve before it listens,
// with every error listed.
func TestServeConfigFileErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(file, []byte("domains = []\n[c2s]\nsasl_mechanisms = [\"CRAM-MD5\"]\n"), 0o600)
	code, _, errOut := meerkat(t, "", "serve", "--config", file)
	if code != 1 {
		t.Fatalf("exit code %d: %s", code, errOut)
	}
	for _, want := range []string{"domains", "c2s.sasl_mechanisms", `unknown mechanism "CRAM-MD5"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in %s", want, errOut)
		}
	}
	if code, _, errOut := meerkat(t, "", "serve", "--config", filepath.Join(t.TempDir(), "missing.toml")); code != 1 || !strings.Contains(errOut, "no such file or directory") {
		t.Errorf("missing file: %d %s", code, errOut)
	}
}
