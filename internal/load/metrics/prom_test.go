package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The Prometheus handler, over HTTP: every counter under its name, the
// sessions online and the last second's TTD percentiles, with the labels.
func TestHandler(t *testing.T) {
	r := NewRecorder()
	for i, n := range r.Counters.named() {
		n.v.Add(int64(i + 1))
	}
	r.Connected.Add(7)
	r.Record(HistTTD, 0, 2*time.Millisecond)
	r.Tick(time.Now())
	srv := httptest.NewServer(r.Handler(map[string]string{"scenario": "one-to-one"}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	// A counter's value ends its line.
	for _, want := range []string{
		"meerkat_load_logins_total{scenario=\"one-to-one\"} 1\n",
		"meerkat_load_login_errors_total{scenario=\"one-to-one\"} 2\n",
		"meerkat_load_sent_total{scenario=\"one-to-one\"} 3\n",
		"meerkat_load_received_total{scenario=\"one-to-one\"} 4\n",
		"meerkat_load_delayed_total{scenario=\"one-to-one\"} 5\n",
		"meerkat_load_errors_total{scenario=\"one-to-one\"} 6\n",
		"meerkat_load_timeouts_total{scenario=\"one-to-one\"} 7\n",
		"meerkat_load_iqs_total{scenario=\"one-to-one\"} 8\n",
		"meerkat_load_sessions_online{scenario=\"one-to-one\"} 7\n",
		`meerkat_load_ttd_p50_seconds{scenario="one-to-one"} 0.002`, // 2 ms, give or take the second histogram's 1 %
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
}
