// Package procfs reads a process's CPU time and resident memory from
// Linux's /proc (proc(5): /proc/<pid>/stat and /proc/<pid>/statm), so
// that a load run can say what the server under test spent.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	CPUSeconds float64 // user + system time since the process started
	RSSBytes   int64   // resident set size
}

// Read samples process pid.
func Read(pid int) (Sample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("procfs: %w", err)
	}
	statm, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("procfs: %w", err)
	}
	return parse(pid, stat, statm)
}

// parse reads a sample from the contents of /proc/<pid>/stat and statm.
func parse(pid int, stat, statm []byte) (Sample, error) {
	// The command name (field 2) is in parentheses and may contain
	// spaces: the fields to read come after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Sample{}, fmt.Errorf("procfs: /proc/%d/stat: no command name", pid)
	}
	fields := bytes.Fields(stat[i+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return Sample{}, fmt.Errorf("procfs: /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return Sample{}, fmt.Errorf("procfs: /proc/%d/stat: bad utime or stime", pid)
	}
	f := bytes.Fields(statm)
	if len(f) < 2 {
		return Sample{}, fmt.Errorf("procfs: /proc/%d/statm: too short", pid)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("procfs: /proc/%d/statm: %w", pid, err)
	}
	return Sample{
		CPUSeconds: float64(utime+stime) / clockTicks,
		RSSBytes:   pages * int64(os.Getpagesize()),
	}, nil
}
