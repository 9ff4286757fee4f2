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
