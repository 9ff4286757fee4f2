package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Two processes' worth of users run against one server as two ranges,
// written to files, merged by the merge command: the merged result
// counts every user and every message.
func TestRunPartitionedAndMerge(t *testing.T) {
	srv := servertest.Start(t, servertest.Modules("[modules.register]\nenabled = true\nregistrations_per_minute = 0\n"))
	addr, _ := srv.Addr(story.TCP)
	dir := t.TempDir()
	var files []string
	for i, rng := range [][2]string{{"0", "10"}, {"10", "20"}} {
		out := filepath.Join(dir, "part"+rng[0]+".json")
		files = append(files, out)
		args := []string{"run", "--scenario", "one-to-one", "--addr", addr, "--domain", srv.Domain(),
			"--users", "20", "--users-from", rng[0], "--users-to", rng[1], "--provision", "register",
			"--rate", "5", "--duration", "1s", "--quiet", "--log-level", "error", "--out", out,
			"--key-cache", filepath.Join(dir, "keys")}
		if i == 1 {
			args = append(args, "--plot", filepath.Join(dir, "p.png"), "--metrics-addr", "127.0.0.1:0")
		}
		if err := run(context.Background(), args); err != nil {
			t.Fatalf("run %v: %v", rng, err)
		}
	}
	merged := filepath.Join(dir, "all.json")
	if err := run(context.Background(), append([]string{"merge", "-o", merged}, files...)); err != nil {
		t.Fatal(err)
	}
	m, err := metrics.ReadFile(merged)
	if err != nil {
		t.Fatal(err)
	}
	if m.Processes != 2 || m.Count != 20 || m.Counters["logins"] != 20 || m.Counters["sent"] == 0 || m.Counters["received"] != m.Counters["sent"] {
		t.Fatalf("merged: processes %d, count %d, counters %v", m.Processes, m.Count, m.Counters)
	}
	for _, cmd := range [][]string{{"table", merged}, {"compare", files[0], files[1]}, {"plot", "-o", filepath.Join(dir, "q.png"), merged}, {"scenarios"}} {
		if err := run(context.Background(), cmd); err != nil {
			t.Errorf("%v: %v", cmd, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "p.png")); err != nil {
		t.Error(err)
	}
	if err := run(context.Background(), []string{"nope"}); err == nil {
		t.Error("no error for an unknown command")
	}
}

// The relay command serves until its context ends; a client of the load
// tool gets frames through it.
func TestRelayCommand(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	logOutput = w
	defer func() { logOutput = os.Stderr }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"relay", "--addr", "127.0.0.1:0"}) }()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	_, addr, ok := strings.Cut(strings.TrimSpace(line), "addr=")
	if !ok {
		t.Fatalf("no address in %q", line)
	}
	c, _, err := xmppc.Dial(ctx, xmppc.Options{Addr: addr, Domain: "localhost", Transport: xmppc.Relay, RelayID: 7}, "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go c.Run(func(el *xmlstream.Element, _ time.Time) { got <- el.Name })
	if err := c.SendTo(7, []byte("<message xmlns='jabber:client'/>")); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-got:
		if name != "message" {
			t.Fatalf("got %s", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the frame to ourselves did not come back")
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
	if err := run(context.Background(), []string{"relay", "--cert", filepath.Join(t.TempDir(), "none.pem"), "--key", "x"}); err == nil {
		t.Fatal("no error for a missing certificate")
	}
}
