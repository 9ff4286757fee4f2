package entitytime_test

import (
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/modules/entitytime"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
)

// TestElement checks the XEP-0082 formats (XEP-0202 §3, example 2).
func TestElement(t *testing.T) {
	loc := time.FixedZone("", -6*3600)
	got := entitytime.Element(time.Date(2006, 12, 19, 11, 58, 35, 12e6, loc)).String()
	want := `<time xmlns='urn:xmpp:time'><tzo>-06:00</tzo><utc>2006-12-19T17:58:35.012000Z</utc></time>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := entitytime.Element(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)).String(); got !=
		`<time xmlns='urn:xmpp:time'><tzo>+00:00</tzo><utc>2026-01-02T03:04:05Z</utc></time>` {
		t.Fatalf("UTC: %s", got)
	}
}

func TestStoryTime(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		before := time.Now().Add(-time.Second)
		q := alice.IQ(story.Time(story.RawAddr(srv.Domain()))).Child("time", entitytime.NS)
		utc, err := stanza.ParseTime(q.ChildText("utc", entitytime.NS))
		if err != nil || utc.Before(before) || utc.After(time.Now().Add(time.Second)) {
			t.Fatalf("utc %s: %v", q, err)
		}
	})
}
