package metrics

import (
	"sync"
	"sync/atomic"
	"time"
)

// Counters are the run's totals. Connected is a gauge; the others only
// grow.
type Counters struct {
	Connected   atomic.Int64 // sessions online now
	Logins      atomic.Int64 // completed logins (connect, TLS, SASL, bind)
	LoginErrors atomic.Int64 // logins that failed
	Sent        atomic.Int64 // stamped stanzas sent (messages or presences)
	Received    atomic.Int64 // stamped stanzas received live (TTD recorded)
	Delayed     atomic.Int64 // stamped stanzas received with <delay/> (offline storage): no TTD
	Errors      atomic.Int64 // stanza errors, stream errors, broken connections, failed writes
	Timeouts    atomic.Int64 // stanzas sent but never received; IQs never answered
	IQs         atomic.Int64 // IQ round trips completed
}

// namedCounter is a counter with its name in Result.Counters (and, as
// meerkat_load_<name>_total, in the Prometheus handler) and its help.
type namedCounter struct {
	name, help string
	v          *atomic.Int64
}

// named lists the counters that only grow.
func (c *Counters) named() []namedCounter {
	return []namedCounter{
		{"logins", "Completed logins (connect, TLS, SASL, bind).", &c.Logins},
		{"login_errors", "Failed logins.", &c.LoginErrors},
		{"sent", "Stamped stanzas sent.", &c.Sent},
		{"received", "Stamped stanzas received live (TTD recorded).", &c.Received},
		{"delayed", "Stamped stanzas received with <delay/>.", &c.Delayed},
		{"errors", "Stanza errors, stream errors, lost connections, failed writes.", &c.Errors},
		{"timeouts", "Stanzas never received, IQs never answered.", &c.Timeouts},
		{"iqs", "IQ round trips completed.", &c.IQs},
	}
}

// Names of the histograms in a Result.
const (
	HistTTD     = "ttd_us"      // time to deliver: send stamp to receive
	HistConnect = "connect_us"  // TCP (and TLS, for direct TLS) connect
	HistLogin   = "login_us"    // dial to bound resource
	HistIQ      = "iq_rtt_us"   // IQ sent to its answer parsed
	HistSendLag = "send_lag_us" // how late the load tool sent against its schedule
)

// HistNames lists the histograms in the order reports show them.
var HistNames = []string{HistTTD, HistConnect, HistLogin, HistIQ, HistSendLag}

// ProcSample is one reading of the server process (from /proc).
type ProcSample struct {
	CPUSeconds float64 // user + system, since the process started
	RSSBytes   int64
}

// Recorder collects a run's measurements. Everything is safe for
// concurrent use; Tick is called once a second by one goroutine.
type Recorder struct {
	Counters
	hists     map[string]*Hist
	ttdSecond *Hist

	// Proc, when set, reads the server process for the timeline.
	Proc func() (ProcSample, bool)

	mu       sync.Mutex
	timeline []Sample
	last     [4]int64 // logins, sent, received, errors at the last tick
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{hists: map[string]*Hist{}, ttdSecond: NewHist(SecondSigFigs)}
	for _, n := range HistNames {
		r.hists[n] = NewHist(TotalSigFigs)
	}
	return r
}

// Record adds a duration to histogram name (one of HistNames); key picks
// the shard (the connection's index).
func (r *Recorder) Record(name string, key int, d time.Duration) {
	us := d.Microseconds()
	r.hists[name].Record(key, us)
	if name == HistTTD {
		r.ttdSecond.Record(key, us)
	}
}

// Hist returns histogram name.
func (r *Recorder) Hist(name string) *Hist { return r.hists[name] }

// Sample is one second of a run: what happened during the second that
// ended at T, and the gauges at T.
type Sample struct {
	T         int64   `json:"t"` // Unix seconds
	Connected int64   `json:"connected"`
	Logins    int64   `json:"logins"`
	Sent      int64   `json:"sent"`
	Received  int64   `json:"received"`
	Errors    int64   `json:"errors"`
	TTD       string  `json:"ttd,omitempty"` // encoded histogram of this second
	TTDP50    int64   `json:"ttd_p50_us"`
	TTDP99    int64   `json:"ttd_p99_us"`
	ServerCPU float64 `json:"server_cpu_s,omitempty"` // cumulative
	ServerRSS int64   `json:"server_rss_bytes,omitempty"`
}

// Tick closes the second ending at now and returns its sample.
func (r *Recorder) Tick(now time.Time) Sample {
	h := r.ttdSecond.Take()
	s := Sample{T: now.Unix(), Connected: r.Connected.Load()}
	cur := [4]int64{r.Logins.Load(), r.Sent.Load(), r.Received.Load(), r.Errors.Load()}
	if h.TotalCount() > 0 {
		s.TTD, _ = Encode(h)
		s.TTDP50, s.TTDP99 = h.ValueAtQuantile(50), h.ValueAtQuantile(99)
	}
	if r.Proc != nil {
		if p, ok := r.Proc(); ok {
			s.ServerCPU, s.ServerRSS = p.CPUSeconds, p.RSSBytes
		}
	}
	r.mu.Lock()
	s.Logins, s.Sent, s.Received, s.Errors = cur[0]-r.last[0], cur[1]-r.last[1], cur[2]-r.last[2], cur[3]-r.last[3]
	r.last = cur
	r.timeline = append(r.timeline, s)
	r.mu.Unlock()
	return s
}

// Timeline returns the samples so far.
func (r *Recorder) Timeline() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.timeline...)
}
