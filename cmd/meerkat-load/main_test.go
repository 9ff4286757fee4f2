package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
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
		if err := run(args); err != nil {
			t.Fatalf("run %v: %v", rng, err)
		}
	}
	merged := filepath.Join(dir, "all.json")
	if err := run(append([]string{"merge", "-o", merged}, files...)); err != nil {
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
		if err := run(cmd); err != nil {
			t.Errorf("%v: %v", cmd, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "p.png")); err != nil {
		t.Error(err)
	}
	if err := run([]string{"nope"}); err == nil {
		t.Error("no error for an unknown command")
	}
}
