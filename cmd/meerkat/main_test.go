package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/story"
)

// meerkat runs the command in-process and returns its exit code and output.
func meerkat(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := meerkat(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "meerkat ") {
		t.Fatalf("%d %q", code, out)
	}
	if code, _, errOut := meerkat(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
}

func TestConfigPrintAndCheck(t *testing.T) {
	code, out, _ := meerkat(t, "", "config", "print")
	if code != 0 || !strings.Contains(out, "[modules.ping]") {
		t.Fatalf("print: %d\n%s", code, out)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(out), 0o600)
	if code, out, errOut := meerkat(t, "", "config", "check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check of the printed config: %d %s %s", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("domains = []\nlog_level = \"loud\"\n[c2s]\nmax_depth = -1\n"), 0o600)
	code, _, errOut := meerkat(t, "", "config", "check", bad)
	if code != 1 {
		t.Fatalf("check of a bad config: %d", code)
	}
	// Every error at once.
	for _, want := range []string{"domains", "log_level", "c2s.max_depth"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in %s", want, errOut)
		}
	}
}

func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	steps := []struct {
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"", []string{"user", "add", "--data", data, "alice@localhost", "s3cret"}, 0, "created alice@localhost"},
		{"pw from stdin\n", []string{"user", "add", "--data", data, "Bob@LocalHost"}, 0, "created bob@localhost"},
		{"", []string{"user", "add", "--data", data, "alice@localhost", "again"}, 1, "already exists"},
		{"", []string{"user", "add", "--data", data, "carol@elsewhere.org", "pw"}, 1, "not a served domain"},
		{"", []string{"user", "add", "--data", data, "localhost", "pw"}, 1, "not an account address"},
		{"", []string{"user", "add", "--data", data, "dave@localhost"}, 1, "no password"},
		{"", []string{"user", "list", "--data", data}, 0, "alice@localhost\nbob@localhost\n"},
		{"new\n", []string{"user", "passwd", "--data", data, "alice@localhost"}, 0, "changed the password of alice@localhost"},
		{"", []string{"user", "passwd", "--data", data, "nobody@localhost", "x"}, 1, "does not exist"},
		{"", []string{"user", "remove", "--data", data, "bob@localhost"}, 0, "removed bob@localhost"},
		{"", []string{"user", "remove", "--data", data, "bob@localhost"}, 1, "does not exist"},
		{"", []string{"user", "list", "--data", data, "localhost"}, 0, "alice@localhost\n"},
		{"", []string{"user", "frob", "--data", data}, 1, "unknown command"},
		{"", []string{"user", "add", "--data", data, "--domain", "example.net", "erin@example.net", "pw"}, 0, "created erin@example.net"},
	}
	for _, s := range steps {
		code, out, errOut := meerkat(t, s.stdin, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.out) {
			t.Errorf("meerkat %s: %d %q %q, want %d %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServe starts the server as `meerkat serve` does, connects a client,
// and stops the server as SIGTERM would.
func TestServe(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := meerkat(t, "", "user", "add", "--data", data, "alice@localhost", "pw"); code != 0 {
		t.Fatal(errOut)
	}
	addr, tlsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &watchWriter{want: "Meerkat is running", seen: make(chan struct{})}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--c2s-addr", addr, "--tls-addr", tlsAddr, "--http-addr", "", "--https-addr", "", "--log-level", "info"},
			strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	select {
	case <-logs.seen:
	case code := <-done:
		t.Fatalf("serve exited with %d:\n%s", code, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not start:\n%s", logs.String())
	}
	srv := &story.External{
		DomainName: "localhost",
		Addrs:      map[story.Transport]string{story.TCP: addr, story.DirectTLS: tlsAddr},
		TLS:        &tls.Config{InsecureSkipVerify: true},
	}
	acct := story.Account{Localpart: "alice", Password: "pw"}
	alice, err := story.Connect(ctx, t, srv, acct, story.Options{})
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, logs.String())
	}
	alice.IQ(story.Ping(story.RawAddr("localhost")))
	cancel() // SIGTERM
	alice.Expect(story.IsStreamError("system-shutdown"))
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d\n%s", code, logs.String())
	}
	for _, want := range []string{"Meerkat is running", "user add --data", "alice@localhost", "shutting down", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// watchWriter collects the server's log and tells when a line appears.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestUserCommandsWhileServing: with the server running, the user commands
// go through it, so removing an account closes its sessions at once.
func TestUserCommandsWhileServing(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &watchWriter{want: "Meerkat is running", seen: make(chan struct{})}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--c2s-addr", addr, "--tls-addr", "", "--http-addr", "127.0.0.1:0", "--https-addr", ""},
			strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	select {
	case <-logs.seen:
	case code := <-done:
		t.Fatalf("serve exited with %d:\n%s", code, logs.String())
	}
	if code, out, errOut := meerkat(t, "", "user", "add", "--data", data, "carl@localhost", "pw"); code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	srv := &story.External{DomainName: "localhost", Addrs: map[story.Transport]string{story.TCP: addr}, TLS: &tls.Config{InsecureSkipVerify: true}}
	carl, err := story.Connect(ctx, t, srv, story.Account{Localpart: "carl", Password: "pw"}, story.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ := meerkat(t, "", "user", "list", "--data", data); code != 0 || out != "carl@localhost\n" {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, errOut := meerkat(t, "", "user", "add", "--data", data, "carl@localhost", "pw"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate: %d %s", code, errOut)
	}
	if code, out, errOut := meerkat(t, "", "user", "remove", "--data", data, "carl@localhost"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %d %s %s", code, out, errOut)
	}
	carl.Expect(story.IsStreamError("not-authorized"))
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d", code)
	}
	// With the server stopped the commands use the database.
	if code, out, _ := meerkat(t, "", "user", "list", "--data", data); code != 0 || out != "" {
		t.Fatalf("list after stop: %d %q", code, out)
	}
}
