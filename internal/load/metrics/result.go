package metrics

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// ResultVersion is the version of the result file format.
const ResultVersion = 1

// Result is what one load process writes at the end of a run, and what
// merging several gives.
type Result struct {
	Version   int               `json:"version"`
	Label     string            `json:"label,omitempty"` // the target's name in a comparison ("meerkat", "prosody"…)
	Scenario  string            `json:"scenario"`
	Target    string            `json:"target"`
	Domain    string            `json:"domain"`
	Transport string            `json:"transport"`
	Mechanism string            `json:"mechanism,omitempty"`
	Users     int               `json:"users"` // the whole population
	First     int               `json:"first"` // the range this result covers
	Count     int               `json:"count"`
	Processes int               `json:"processes"` // load processes merged into this result
	Options   map[string]string `json:"options,omitempty"`
	Start     time.Time         `json:"start"`
	End       time.Time         `json:"end"`
	// The login phase, for the login rate.
	LoginStart time.Time `json:"login_start"`
	LoginEnd   time.Time `json:"login_end"`
	// Counters by name: logins, login_errors, sent, received, delayed,
	// errors, timeouts, iqs.
	Counters   map[string]int64  `json:"counters"`
	Histograms map[string]string `json:"histograms"` // encoded, by name (HistNames)
	Timeline   []Sample          `json:"timeline"`
	Steps      []Step            `json:"steps,omitempty"`
	Milestones []Milestone       `json:"milestones,omitempty"`
	ServerPID  int               `json:"server_pid,omitempty"`
	// ErrorKinds counts errors by kind ("login: not-authorized"…).
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
}

// Step is one rate of a stepped run (the search for the highest rate
// whose p99 TTD stays under a limit): its target total rate and the
// seconds it covers, (Start, End] in Unix seconds, matching Sample.T.
type Step struct {
	Rate  float64 `json:"rate"` // stanzas/s for the whole run (all processes)
	Start int64   `json:"start"`
	End   int64   `json:"end"`
}

// Milestone is the server's memory when a number of sessions were online
// and idle: RSS per session is (RSS - BaseRSS) / Sessions.
type Milestone struct {
	Sessions int   `json:"sessions"` // online in this process when sampled
	At       int64 `json:"at"`
	RSS      int64 `json:"rss_bytes"`
	BaseRSS  int64 `json:"base_rss_bytes"` // before the first connection
}

// Snapshot fills the counters and histograms of res from r.
func (r *Recorder) Snapshot(res *Result) error {
	res.Counters = map[string]int64{}
	for _, n := range r.Counters.named() {
		res.Counters[n.name] = n.v.Load()
	}
	res.Histograms = map[string]string{}
	for _, n := range HistNames {
		enc, err := Encode(r.hists[n].Snapshot())
		if err != nil {
			return err
		}
		res.Histograms[n] = enc
	}
	res.Timeline = r.Timeline()
	return nil
}

// WriteFile writes res as indented JSON.
func (res *Result) WriteFile(path string) error {
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return fmt.Errorf("result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	return nil
}

// ReadFile reads a result file.
func ReadFile(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("result %s: %w", path, err)
	}
	if res.Version != ResultVersion {
		return nil, fmt.Errorf("result %s: version %d, want %d", path, res.Version, ResultVersion)
	}
	return &res, nil
}

// Merge combines the results of load processes that shared one run (each
// drove a range of users): counters add up, histograms merge exactly,
// timelines merge second by second. The server samples, steps and
// milestones come from the first result that has them (every process
// samples the same server; milestones are per process and add up).
func Merge(results ...*Result) (*Result, error) {
	if len(results) == 0 {
		return nil, errors.New("merge: no results")
	}
	first := results[0]
	out := &Result{
		Version: ResultVersion, Label: first.Label, Scenario: first.Scenario, Target: first.Target,
		Domain: first.Domain, Transport: first.Transport, Mechanism: first.Mechanism,
		Users: first.Users, First: first.First, Options: first.Options, Start: first.Start, End: first.End,
		Counters: map[string]int64{}, Histograms: map[string]string{}, ServerPID: first.ServerPID,
		LoginStart: first.LoginStart, LoginEnd: first.LoginEnd,
	}
	byT := map[int64]*Sample{}
	ttds := map[int64][]string{}
	for _, r := range results {
		if r.Scenario != first.Scenario || r.Users != first.Users {
			return nil, fmt.Errorf("merge: results of different runs (%s with %d users, %s with %d)", first.Scenario, first.Users, r.Scenario, r.Users)
		}
		out.Processes += max(r.Processes, 1)
		out.Count += r.Count
		out.First = min(out.First, r.First)
		if r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		for k, v := range r.Counters {
			out.Counters[k] += v
		}
		for k, v := range r.ErrorKinds {
			if out.ErrorKinds == nil {
				out.ErrorKinds = map[string]int64{}
			}
			out.ErrorKinds[k] += v
		}
		if r.LoginStart.Before(out.LoginStart) {
			out.LoginStart = r.LoginStart
		}
		if r.LoginEnd.After(out.LoginEnd) {
			out.LoginEnd = r.LoginEnd
		}
		for _, s := range r.Timeline {
			m := byT[s.T]
			if m == nil {
				m = &Sample{T: s.T}
				byT[s.T] = m
			}
			m.Connected += s.Connected
			m.Logins += s.Logins
			m.Sent += s.Sent
			m.Received += s.Received
			m.Errors += s.Errors
			if m.ServerRSS == 0 && m.ServerCPU == 0 {
				m.ServerCPU, m.ServerRSS = s.ServerCPU, s.ServerRSS
			}
			if s.TTD != "" {
				ttds[s.T] = append(ttds[s.T], s.TTD)
			}
		}
		if len(out.Steps) == 0 {
			out.Steps = r.Steps
		}
		if out.ServerPID == 0 {
			out.ServerPID = r.ServerPID
		}
	}
	for _, n := range HistNames {
		var enc []string
		for _, r := range results {
			enc = append(enc, r.Histograms[n])
		}
		h, err := MergeEncoded(TotalSigFigs, enc...)
		if err != nil {
			return nil, fmt.Errorf("merge %s: %w", n, err)
		}
		if out.Histograms[n], err = Encode(h); err != nil {
			return nil, err
		}
	}
	for t, enc := range ttds {
		h, err := MergeEncoded(SecondSigFigs, enc...)
		if err != nil {
			return nil, fmt.Errorf("merge timeline: %w", err)
		}
		s := byT[t]
		if s.TTD, err = Encode(h); err != nil {
			return nil, err
		}
		s.TTDP50, s.TTDP99 = h.ValueAtQuantile(50), h.ValueAtQuantile(99)
	}
	for _, s := range byT {
		out.Timeline = append(out.Timeline, *s)
	}
	slices.SortFunc(out.Timeline, func(a, b Sample) int { return cmp.Compare(a.T, b.T) })
	out.Milestones = mergeMilestones(results)
	return out, nil
}

// mergeMilestones adds up the sessions of the processes' milestones of
// the same rank (each process pauses at its own milestones); the RSS is
// the server's, sampled by the last process to get there.
func mergeMilestones(results []*Result) []Milestone {
	var out []Milestone
	for _, r := range results {
		for i, m := range r.Milestones {
			if i >= len(out) {
				out = append(out, m)
				continue
			}
			o := &out[i]
			o.Sessions += m.Sessions
			if m.At >= o.At {
				o.At, o.RSS = m.At, m.RSS
			}
			o.BaseRSS = min(o.BaseRSS, m.BaseRSS)
		}
	}
	return out
}

// Window is what happened in the seconds (from, to] of a timeline.
type Window struct {
	Seconds   int
	Sent      int64
	Received  int64
	Errors    int64
	TTDP50    int64 // µs
	TTDP99    int64
	TTDCount  int64
	ServerCPU float64 // seconds spent by the server in the window; 0 if not sampled
}

// SentRate and ReceivedRate are per second.
func (w Window) SentRate() float64     { return float64(w.Sent) / float64(max(w.Seconds, 1)) }
func (w Window) ReceivedRate() float64 { return float64(w.Received) / float64(max(w.Seconds, 1)) }

// WindowOf sums the samples with from < T <= to.
func WindowOf(timeline []Sample, from, to int64) (Window, error) {
	var w Window
	var enc []string
	var cpu0, cpu1 float64
	for _, s := range timeline {
		if s.T == from {
			cpu0 = s.ServerCPU
		}
		if s.T <= from || s.T > to {
			continue
		}
		w.Seconds++
		w.Sent += s.Sent
		w.Received += s.Received
		w.Errors += s.Errors
		if s.TTD != "" {
			enc = append(enc, s.TTD)
		}
		cpu1 = s.ServerCPU
	}
	if cpu0 > 0 && cpu1 > 0 {
		w.ServerCPU = cpu1 - cpu0
	}
	h, err := MergeEncoded(SecondSigFigs, enc...)
	if err != nil {
		return w, err
	}
	w.TTDCount = h.TotalCount()
	if w.TTDCount > 0 {
		w.TTDP50, w.TTDP99 = h.ValueAtQuantile(50), h.ValueAtQuantile(99)
	}
	return w, nil
}
