package stanza

import (
	"github.com/meerkat-xmpp/meerkat/xmlstream"
	"testing"
	"time"
)

func TestTime(t *testing.T) {
	for in, want := range map[string]string{
		"2010-07-10T23:08:25Z":             "2010-07-10T23:08:25Z",
		"2010-07-10T23:08:25.5Z":           "2010-07-10T23:08:25.500000Z",
		"2010-07-10T23:08:25-06:00":        "2010-07-11T05:08:25Z",
		"2010-07-10T23:08:25.123456Z":      "2010-07-10T23:08:25.123456Z",
		"2010-07-10T23:08:25.1234567Z":     "2010-07-10T23:08:25.123456Z",
		"2010-07-10T23:08:25.000000+00:00": "2010-07-10T23:08:25Z",
	} {
		tm, err := ParseTime(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := FormatTime(tm); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "2010-07-10", "2010-07-10 23:08:25Z", "yesterday", "2010-13-10T23:08:25Z"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if FormatTime(time.Unix(0, 0)) != "1970-01-01T00:00:00Z" {
		t.Error("epoch")
	}
}

func TestForwarded(t *testing.T) {
	msg := xmlstream.NewElement("message", NSClient).AddChild(xmlstream.NewElement("body", NSClient).AddText("hi"))
	got := Forwarded(msg, time.Date(2026, 11, 24, 3, 4, 5, 6000, time.UTC)).String()
	want := `<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-11-24T03:04:05.000006Z'/><message xmlns='jabber:client'><body>hi</body></message></forwarded>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
