package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"syscall"
	"testing"
)

// TestRaiseFileLimit lowers the soft limit of open files of this process,
// as a distribution's default of 1024 would, and checks that the server
// raises it to the hard limit and logs how many connections that allows.
// (The binary's own test, cmd/meerkat TestOpenFilesLimit, does the same
// with a process started under `ulimit -S -n 256`.)
func TestRaiseFileLimit(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max <= 512 || orig.Max == math.MaxUint64 {
		t.Skipf("hard limit %d", orig.Max)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	low := syscall.Rlimit{Cur: 512, Max: orig.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	raiseFileLimit(log)

	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if now.Cur != orig.Max || now.Max != orig.Max {
		t.Errorf("limits after raiseFileLimit: soft %d hard %d, want both %d", now.Cur, now.Max, orig.Max)
	}
	want := fmt.Sprintf("level=INFO msg=\"open files limit\" limit=%d connections=%d\n", orig.Max, orig.Max-reservedFiles)
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), want)
	}

	// Already at the hard limit: nothing to change, the same line.
	buf.Reset()
	raiseFileLimit(log)
	if buf.String() != want {
		t.Errorf("second call logged:\n%s\nwant:\n%s", buf.String(), want)
	}
}
