package procfs

import (
	"os"
	"runtime"
	"testing"
)

func TestReadSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes <= 0 || s.CPUSeconds < 0 {
		t.Fatalf("implausible sample %+v", s)
	}
	if _, err := Read(-1); err == nil {
		t.Fatal("no error for a missing process")
	}
}

func TestParse(t *testing.T) {
	const statm = "1000 250 100 1 0 200 0\n"
	// A command name with spaces and a ')' of its own; utime 150, stime 50.
	stat := "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 100 1000 250\n"
	s, err := parse(42, []byte(stat), []byte(statm))
	if err != nil {
		t.Fatal(err)
	}
	if s.CPUSeconds != 2 || s.RSSBytes != 250*int64(os.Getpagesize()) {
		t.Fatalf("parsed %+v", s)
	}
	for _, tc := range []struct{ stat, statm string }{
		{"42 no name S 1", statm},
		{"42 (x) S 1 2 3", statm},
		{"42 (x) S 1 42 42 0 -1 4194560 100 0 0 0 x 50 0", statm},
		{stat, "1000"},
		{stat, "1000 many"},
	} {
		if _, err := parse(42, []byte(tc.stat), []byte(tc.statm)); err == nil {
			t.Errorf("no error for stat %q, statm %q", tc.stat, tc.statm)
		}
	}
}
