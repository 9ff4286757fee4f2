package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the recorder's live figures in the Prometheus text
// format: the counters as meerkat_load_<name>_total, the sessions online,
// and the TTD percentiles of the last complete second. labels (scenario,
// target…) are added to every series.
func (r *Recorder) Handler(labels map[string]string) http.Handler {
	reg := prometheus.NewRegistry()
	c := &r.Counters
	gauge := func(name, help string, v func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meerkat_load_" + name, Help: help, ConstLabels: labels,
		}, v))
	}
	for _, n := range c.named() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "meerkat_load_" + n.name + "_total", Help: n.help, ConstLabels: labels,
		}, func() float64 { return float64(n.v.Load()) }))
	}
	gauge("sessions_online", "Sessions online now.", func() float64 { return float64(c.Connected.Load()) })
	last := func(f func(Sample) int64) func() float64 {
		return func() float64 {
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.timeline) == 0 {
				return 0
			}
			return float64(f(r.timeline[len(r.timeline)-1])) / 1e6
		}
	}
	gauge("ttd_p50_seconds", "Median time to deliver over the last second.", last(func(s Sample) int64 { return s.TTDP50 }))
	gauge("ttd_p99_seconds", "99th percentile time to deliver over the last second.", last(func(s Sample) int64 { return s.TTDP99 }))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
