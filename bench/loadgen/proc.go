package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ClockTick is the unit of utime and stime in /proc/<pid>/stat. Linux
// exposes them in USER_HZ, which is 100 on every architecture (it is part
// of the user-space ABI, independent of the kernel's CONFIG_HZ).
const ClockTick = 10 * time.Millisecond

// CPUTime is the CPU a process has used: user plus system time of all its
// threads, including threads that have exited. Children are not included.
type CPUTime struct {
	User, System time.Duration
}

// Total is User + System.
func (c CPUTime) Total() time.Duration { return c.User + c.System }

// Sub returns c - d.
func (c CPUTime) Sub(d CPUTime) CPUTime {
	return CPUTime{User: c.User - d.User, System: c.System - d.System}
}

// ReadCPU reads the CPU time of process pid from /proc/<pid>/stat. Its
// resolution is ClockTick: measure over enough requests that 10 ms is
// small against the total.
func ReadCPU(pid int) (CPUTime, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return CPUTime{}, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	c, err := ParseStat(data)
	if err != nil {
		return CPUTime{}, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	return c, nil
}

// ParseStat extracts utime and stime (fields 14 and 15) from the contents
// of /proc/<pid>/stat. The command name (field 2) is in parentheses and
// may itself contain spaces and parentheses, so fields are counted from
// the last ')'.
func ParseStat(data []byte) (CPUTime, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return CPUTime{}, fmt.Errorf("malformed /proc stat: no command name")
	}
	// After ") " come fields 3 (state) onwards; utime is field 14, the
	// 12th of them.
	fields := bytes.Fields(data[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return CPUTime{}, fmt.Errorf("malformed /proc stat: %d fields after the command name, want at least %d", len(fields), stime+1)
	}
	u, err := strconv.ParseUint(string(fields[utime]), 10, 63)
	if err != nil {
		return CPUTime{}, fmt.Errorf("malformed /proc stat utime %q: %w", fields[utime], err)
	}
	s, err := strconv.ParseUint(string(fields[stime]), 10, 63)
	if err != nil {
		return CPUTime{}, fmt.Errorf("malformed /proc stat stime %q: %w", fields[stime], err)
	}
	return CPUTime{User: time.Duration(u) * ClockTick, System: time.Duration(s) * ClockTick}, nil
}
