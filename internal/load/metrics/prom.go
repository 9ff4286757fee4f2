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
	counter := func(name, help string, v func() int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "meerkat_load_" + name + "_total", Help: help, ConstLabels: labels,
		}, func() float64 { return float64(v()) }))
	}
	gauge := func(name, help string, v func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meerkat_load_" + name, Help: help, ConstLabels: labels,
		}, v))
	}
	counter("logins", "Completed logins (connect, TLS, SASL, bind).", c.Logins.Load)
	counter("login_errors", "Failed logins.", c.LoginErrors.Load)
	counter("sent", "Stamped stanzas sent.", c.Sent.Load)
	counter("received", "Stamped stanzas received live (TTD recorded).", c.Received.Load)
	counter("delayed", "Stamped stanzas received with <delay/>.", c.Delayed.Load)
	counter("errors", "Stanza errors, stream errors, lost connections, failed writes.", c.Errors.Load)
	counter("timeouts", "Stanzas never received, IQs never answered.", c.Timeouts.Load)
	counter("iqs", "IQ round trips completed.", c.IQs.Load)
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
