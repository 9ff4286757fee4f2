package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
)

// result makes a result of a stepped run: one second per step, received
// stanzas with the given TTD.
func result(t *testing.T, label string, ttd time.Duration, perStep int64, rss int64) *metrics.Result {
	t.Helper()
	rec := metrics.NewRecorder()
	start := time.Unix(1_700_000_000, 0)
	var steps []metrics.Step
	for s := range 3 {
		for i := range perStep * int64(s+1) {
			rec.Record(metrics.HistTTD, int(i), ttd*time.Duration(s+1))
			rec.Received.Add(1)
			rec.Sent.Add(1)
		}
		at := start.Add(time.Duration(s+1) * time.Second)
		rec.Tick(at)
		steps = append(steps, metrics.Step{Rate: float64(perStep * int64(s+1)), Start: at.Unix() - 1, End: at.Unix()})
	}
	rec.Logins.Add(100)
	res := &metrics.Result{
		Version: metrics.ResultVersion, Label: label, Scenario: "one-to-one", Users: 100, Count: 100, Processes: 1,
		Start: start, End: start.Add(3 * time.Second), LoginStart: start, LoginEnd: start.Add(500 * time.Millisecond),
		Steps: steps, Milestones: []metrics.Milestone{{Sessions: 100, RSS: rss + 1<<20, BaseRSS: 1 << 20}},
	}
	if err := rec.Snapshot(res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSummarize(t *testing.T) {
	s, err := Summarize(result(t, "meerkat", 40*time.Millisecond, 1000, 100*10<<10), 100_000)
	if err != nil {
		t.Fatal(err)
	}
	if s.LoginRate != 200 || s.Rate != 2000 || s.RSSPerSession != 10<<10 {
		t.Fatalf("summary %+v", s)
	}
	// Steps at 40 and 80 ms stay within 100 ms; 120 ms does not.
	if s.Sustained != 2000 {
		t.Fatalf("sustained %v, want 2000", s.Sustained)
	}
}

func TestCompareTableAndPlot(t *testing.T) {
	a := result(t, "meerkat", time.Millisecond, 1000, 100*10<<10)
	b := result(t, "ejabberd", 10*time.Millisecond, 500, 100*100<<10)
	var buf bytes.Buffer
	if err := Compare(&buf, []*metrics.Result{a, b}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"| scenario | metric | meerkat | ejabberd | meerkat/ejabberd |", "RSS per idle session | 10.0 KiB | 100.0 KiB | 0.10× |", "peak stanzas received/s (best step) | 3000 | 1500 | 2.00× |", "TTD p99 at 1000/s | 1.0 ms | 20.1 ms | 0.05× |"} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := WriteTable(&buf, a); err != nil || !strings.Contains(buf.String(), "sustained at p99 ≤ 100 ms") {
		t.Fatalf("table: %v\n%s", err, buf.String())
	}
	png := filepath.Join(t.TempDir(), "p.png")
	if err := Plot(png, a, b); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("plot: %v", err)
	}
}

func TestPlotWithoutTTD(t *testing.T) {
	rec := metrics.NewRecorder()
	rec.Logins.Add(10)
	rec.Connected.Add(10)
	rec.Tick(time.Unix(1_700_000_001, 0))
	res := &metrics.Result{Version: metrics.ResultVersion, Scenario: "login"}
	if err := rec.Snapshot(res); err != nil {
		t.Fatal(err)
	}
	if err := Plot(filepath.Join(t.TempDir(), "login.png"), res); err != nil {
		t.Fatal(err)
	}
}
