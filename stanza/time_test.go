package stanza

import (
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
