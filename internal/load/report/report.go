// Package report turns load results (metrics.Result) into what people
// read: a table of one run, a comparison of runs against several
// servers with ratios, and a PNG plot of TTD percentiles and throughput
// over time.
package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
)

// Summary is the figures of one result that reports show.
type Summary struct {
	Label, Scenario string
	Users           int
	Logins          int64
	LoginRate       float64 // logins/s over the login phase
	LoginP50        int64   // µs
	LoginP99        int64
	Sent, Received  int64
	Delayed         int64
	Errors          int64
	Timeouts        int64
	Rate            float64 // stanzas received per second over the sending phases
	Peak            float64 // the highest received rate of a step
	TTDP50, TTDP99  int64   // µs, whole run
	TTDMax          int64
	IQs             int64
	IQP50, IQP99    int64
	RSSPerSession   float64 // bytes, from the first milestone; 0 if not measured
	Sessions        int
	CPUPer1000      float64 // server CPU seconds per 1,000 stanzas received; 0 if not measured
	// Sustained is the highest stepped rate (received/s) whose p99 TTD
	// stayed within the limit given to Summarize; 0 if none or not stepped.
	Sustained float64
	// Steps holds each step's TTD p50 and p99 (µs) by its target rate.
	Steps map[float64][2]int64
}

// Summarize computes the summary of res; limitMicros is the p99 TTD a
// step must stay within to count as sustained.
func Summarize(res *metrics.Result, limitMicros int64) (Summary, error) {
	s := Summary{Label: cmp.Or(res.Label, res.Target), Scenario: res.Scenario, Users: res.Users}
	c := res.Counters
	s.Logins, s.Sent, s.Received, s.Delayed = c["logins"], c["sent"], c["received"], c["delayed"]
	s.Errors, s.Timeouts, s.IQs = c["errors"]+c["login_errors"], c["timeouts"], c["iqs"]
	if d := res.LoginEnd.Sub(res.LoginStart).Seconds(); d > 0 {
		s.LoginRate = float64(s.Logins) / d
	}
	hist := func(name string) (p50, p99, mx int64, err error) {
		h, err := metrics.Decode(res.Histograms[name])
		if err != nil || h.TotalCount() == 0 {
			return 0, 0, 0, err
		}
		return h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.Max(), nil
	}
	var err error
	if s.LoginP50, s.LoginP99, _, err = hist(metrics.HistLogin); err != nil {
		return s, err
	}
	if s.TTDP50, s.TTDP99, s.TTDMax, err = hist(metrics.HistTTD); err != nil {
		return s, err
	}
	if s.IQP50, s.IQP99, _, err = hist(metrics.HistIQ); err != nil {
		return s, err
	}
	if len(res.Milestones) > 0 {
		m := res.Milestones[0]
		if m.Sessions > 0 && m.RSS > 0 {
			s.Sessions = m.Sessions
			s.RSSPerSession = float64(m.RSS-m.BaseRSS) / float64(m.Sessions)
		}
	}
	if len(res.Steps) > 0 {
		var seconds int
		var received int64
		var cpu float64
		for _, st := range res.Steps {
			w, err := metrics.WindowOf(res.Timeline, st.Start, st.End)
			if err != nil {
				return s, err
			}
			seconds += w.Seconds
			received += w.Received
			cpu += w.ServerCPU
			s.Peak = max(s.Peak, w.ReceivedRate())
			if s.Steps == nil {
				s.Steps = map[float64][2]int64{}
			}
			s.Steps[st.Rate] = [2]int64{w.TTDP50, w.TTDP99}
			if w.TTDCount > 0 && w.TTDP99 <= limitMicros && w.Errors == 0 {
				s.Sustained = max(s.Sustained, w.ReceivedRate())
			}
		}
		if seconds > 0 {
			s.Rate = float64(received) / float64(seconds)
		}
		if received > 0 && cpu > 0 {
			s.CPUPer1000 = cpu / float64(received) * 1000
		}
	}
	return s, nil
}

// WriteTable writes the human table of one result.
func WriteTable(w io.Writer, res *metrics.Result) error {
	s, err := Summarize(res, 100_000)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("scenario", fmt.Sprintf("%s against %s (%s, %s)", res.Scenario, s.Label, res.Transport, cmp.Or(res.Mechanism, "best SCRAM")))
	row("users", fmt.Sprintf("%d of %d [%d,%d), %d process(es)", res.Count, res.Users, res.First, res.First+res.Count, res.Processes))
	row("logins", fmt.Sprintf("%d, %.0f/s; login p50 %s p99 %s", s.Logins, s.LoginRate, Micros(s.LoginP50), Micros(s.LoginP99)))
	if s.Sent > 0 {
		row("stanzas", fmt.Sprintf("sent %d, received %d (%.0f/s), delayed %d, timeouts %d", s.Sent, s.Received, s.Rate, s.Delayed, s.Timeouts))
		row("TTD", fmt.Sprintf("p50 %s  p99 %s  max %s", Micros(s.TTDP50), Micros(s.TTDP99), Micros(s.TTDMax)))
	}
	if s.IQs > 0 {
		row("IQ round trips", fmt.Sprintf("%d, p50 %s p99 %s", s.IQs, Micros(s.IQP50), Micros(s.IQP99)))
	}
	if len(res.Steps) > 1 {
		for _, st := range res.Steps {
			w, err := metrics.WindowOf(res.Timeline, st.Start, st.End)
			if err != nil {
				return err
			}
			row(fmt.Sprintf("step %.0f/s", st.Rate), fmt.Sprintf("received %.0f/s, TTD p50 %s p99 %s, errors %d", w.ReceivedRate(), Micros(w.TTDP50), Micros(w.TTDP99), w.Errors))
		}
		row("sustained at p99 ≤ 100 ms", fmt.Sprintf("%.0f/s", s.Sustained))
	}
	if s.RSSPerSession > 0 {
		row("server memory", fmt.Sprintf("%s per session (%d sessions)", Bytes(s.RSSPerSession), s.Sessions))
	}
	if s.CPUPer1000 > 0 {
		row("server CPU", fmt.Sprintf("%.3f s per 1,000 stanzas", s.CPUPer1000))
	}
	if la := res.Options["loadavg_start"]; la != "" {
		row("machine", fmt.Sprintf("load average %s at start, %s at end; load tool CPU %s s", la, res.Options["loadavg_end"], res.Options["load_tool_cpu_s"]))
	}
	row("errors", fmt.Sprint(s.Errors))
	kinds := make([]string, 0, len(res.ErrorKinds))
	for k := range res.ErrorKinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		row("", fmt.Sprintf("%d × %s", res.ErrorKinds[k], k))
	}
	return tw.Flush()
}

// Compare writes a Markdown table of results against several servers,
// in the order given, with the ratio of the first to each other one
// (Meerkat/ejabberd, Meerkat/Prosody when Meerkat comes first).
func Compare(w io.Writer, results []*metrics.Result) error {
	if len(results) < 1 {
		return fmt.Errorf("compare: no results")
	}
	var sums []Summary
	for _, r := range results {
		s, err := Summarize(r, 100_000)
		if err != nil {
			return fmt.Errorf("compare %s: %w", r.Label, err)
		}
		sums = append(sums, s)
	}
	type metric struct {
		name  string
		val   func(Summary) float64
		fmt   func(float64) string
		lower bool // lower is better
	}
	ms := []metric{
		{"logins/s", func(s Summary) float64 { return s.LoginRate }, num, false},
		{"login p99", func(s Summary) float64 { return float64(s.LoginP99) }, microsF, true},
		{"RSS per idle session", func(s Summary) float64 { return s.RSSPerSession }, Bytes, true},
		{"peak stanzas received/s (best step)", func(s Summary) float64 { return s.Peak }, num, false},
		{"sustained/s at p99 TTD ≤ 100 ms", func(s Summary) float64 { return s.Sustained }, func(v float64) string {
			if v == 0 {
				return "none of the steps"
			}
			return num(v)
		}, false},
	}
	// TTD at each step rate every result ran (whole-run TTDs are not
	// comparable when the runs stopped at different steps).
	var common []float64
	for rate := range sums[0].Steps {
		all := true
		for _, s := range sums[1:] {
			_, ok := s.Steps[rate]
			all = all && ok
		}
		if all {
			common = append(common, rate)
		}
	}
	slices.Sort(common)
	for _, rate := range common {
		for q, name := range []string{"p50", "p99"} {
			ms = append(ms, metric{fmt.Sprintf("TTD %s at %s/s", name, num(rate)), func(s Summary) float64 { return float64(s.Steps[rate][q]) }, microsF, true})
		}
	}
	ms = append(ms, []metric{
		{"server CPU s per 1,000 stanzas", func(s Summary) float64 { return s.CPUPer1000 }, func(v float64) string { return fmt.Sprintf("%.3f", v) }, true},
		{"IQ round trip p99", func(s Summary) float64 { return float64(s.IQP99) }, microsF, true},
		{"errors + timeouts", func(s Summary) float64 { return float64(s.Errors + s.Timeouts) }, num, true},
	}...)
	head := []string{"scenario", "metric"}
	for _, s := range sums {
		head = append(head, s.Label)
	}
	for _, s := range sums[1:] {
		head = append(head, sums[0].Label+"/"+s.Label)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, m := range ms {
		var vals []float64
		any := false
		for _, s := range sums {
			v := m.val(s)
			vals = append(vals, v)
			any = any || v != 0
		}
		if !any {
			continue
		}
		row := []string{sums[0].Scenario, m.name}
		for _, v := range vals {
			row = append(row, m.fmt(v))
		}
		for _, v := range vals[1:] {
			if v == 0 || vals[0] == 0 {
				row = append(row, "–")
				continue
			}
			ratio := vals[0] / v
			better := ratio > 1
			if m.lower {
				better = ratio < 1
			}
			mark := ""
			if !better && ratio != 1 {
				mark = " (" + sums[0].Label + " worse)"
			}
			row = append(row, fmt.Sprintf("%.2f×%s", ratio, mark))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	return nil
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func microsF(v float64) string { return Micros(int64(v)) }

// Micros formats microseconds.
func Micros(us int64) string {
	switch {
	case us == 0:
		return "–"
	case us < 1000:
		return fmt.Sprintf("%d µs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.1f ms", float64(us)/1000)
	}
	return fmt.Sprintf("%.2f s", float64(us)/1e6)
}

// Bytes formats a size in KiB or MiB.
func Bytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
