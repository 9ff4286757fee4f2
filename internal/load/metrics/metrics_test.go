package metrics

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// TestHistShardSize: a shard fills one 64-byte cache line, so no two
// shards' locks share one.
func TestHistShardSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the padding is sized for 64-bit pointers")
	}
	var h Hist
	if got := unsafe.Sizeof(h.shard[0]); got != 64 {
		t.Fatalf("a shard is %d bytes, want 64", got)
	}
}

// Merging the histograms of several processes gives exactly the
// histogram one process recording everything would have.
func TestMergeIsExact(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	all := NewHist(TotalSigFigs)
	var parts []string
	for p := range 3 {
		h := NewHist(TotalSigFigs)
		for i := range 10_000 {
			v := int64(rnd.ExpFloat64()*2000) + 1
			h.Record(i, v)
			all.Record(i+p, v)
		}
		enc, err := Encode(h.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, enc)
	}
	merged, err := MergeEncoded(TotalSigFigs, parts...)
	if err != nil {
		t.Fatal(err)
	}
	want := all.Snapshot()
	if !reflect.DeepEqual(merged.Export().Counts, want.Export().Counts) || merged.TotalCount() != 30_000 {
		t.Fatalf("merged histogram differs: %d values, p99 %d, want p99 %d", merged.TotalCount(), merged.ValueAtQuantile(99), want.ValueAtQuantile(99))
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if merged.ValueAtQuantile(q) != want.ValueAtQuantile(q) {
			t.Errorf("p%v: %d, want %d", q, merged.ValueAtQuantile(q), want.ValueAtQuantile(q))
		}
	}
}

func TestHistConcurrentAndTake(t *testing.T) {
	h := NewHist(SecondSigFigs)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(g, int64(i+1))
			}
		}()
	}
	wg.Wait()
	if got := h.Take().TotalCount(); got != 8000 {
		t.Fatalf("took %d values, want 8000", got)
	}
	if got := h.Snapshot().TotalCount(); got != 0 {
		t.Fatalf("%d values after Take", got)
	}
	h.Record(0, MaxMicros*10) // clamped, not dropped
	if got := h.Snapshot().Max(); got < MaxMicros*99/100 {
		t.Fatalf("max %d after clamping", got)
	}
}

func sampleResult(t *testing.T, first, count int, ttd []time.Duration) *Result {
	t.Helper()
	rec := NewRecorder()
	start := time.Unix(1_700_000_000, 0)
	for i, d := range ttd {
		rec.Record(HistTTD, i, d)
		rec.Received.Add(1)
		rec.Sent.Add(1)
	}
	rec.Logins.Add(int64(count))
	rec.Tick(start.Add(time.Second))
	res := &Result{
		Version: ResultVersion, Label: "meerkat", Scenario: "one-to-one", Target: "127.0.0.1:5222",
		Users: 100, First: first, Count: count, Processes: 1,
		Start: start, End: start.Add(2 * time.Second), LoginStart: start, LoginEnd: start.Add(time.Second),
		Steps:      []Step{{Rate: 100, Start: start.Unix(), End: start.Unix() + 1}},
		Milestones: []Milestone{{Sessions: count, At: start.Unix(), RSS: 2 << 20, BaseRSS: 1 << 20}},
		ErrorKinds: map[string]int64{"login: timeout": 1},
	}
	if err := rec.Snapshot(res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestResultRoundTrip(t *testing.T) {
	res := sampleResult(t, 0, 50, []time.Duration{time.Millisecond, 2 * time.Millisecond, 40 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "r.json")
	if err := res.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Times come back in the local zone: compare them as instants.
	if !back.Start.Equal(res.Start) || !back.LoginEnd.Equal(res.LoginEnd) {
		t.Fatalf("times changed: %v %v", back.Start, back.LoginEnd)
	}
	back.Start, back.End, back.LoginStart, back.LoginEnd = res.Start, res.End, res.LoginStart, res.LoginEnd
	if !reflect.DeepEqual(back, res) {
		t.Fatalf("round trip changed the result:\n%+v\n%+v", back, res)
	}
}

func TestMergeResults(t *testing.T) {
	a := sampleResult(t, 0, 50, []time.Duration{time.Millisecond, 3 * time.Millisecond})
	b := sampleResult(t, 50, 50, []time.Duration{2 * time.Millisecond})
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Processes != 2 || m.First != 0 || m.Count != 100 || m.Counters["received"] != 3 || m.Counters["logins"] != 100 {
		t.Fatalf("merged header/counters wrong: %+v", m)
	}
	if m.ErrorKinds["login: timeout"] != 2 {
		t.Fatalf("error kinds %v", m.ErrorKinds)
	}
	h, err := Decode(m.Histograms[HistTTD])
	if err != nil || h.TotalCount() != 3 || h.Max() < 2990 {
		t.Fatalf("merged TTD: %v, %d values, max %d", err, h.TotalCount(), h.Max())
	}
	if len(m.Timeline) != 1 || m.Timeline[0].Received != 3 || m.Timeline[0].TTDP99 < 2990 {
		t.Fatalf("merged timeline %+v", m.Timeline)
	}
	if len(m.Milestones) != 1 || m.Milestones[0].Sessions != 100 {
		t.Fatalf("milestones %+v", m.Milestones)
	}
	w, err := WindowOf(m.Timeline, m.Steps[0].Start, m.Steps[0].End)
	if err != nil || w.Received != 3 || w.TTDCount != 3 {
		t.Fatalf("window %+v, %v", w, err)
	}
	c := sampleResult(t, 0, 10, nil)
	c.Scenario = "login"
	if _, err := Merge(a, c); err == nil {
		t.Fatal("merged results of different scenarios")
	}
}
