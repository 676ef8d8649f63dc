package netlab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// Usage is a process's resource use as the kernel accounts it.
type Usage struct {
	RSS int64         // resident set size in bytes (VmRSS)
	CPU time.Duration // user + system time so far
}

// ProcUsage reads the resident memory and CPU time of pid from /proc.
// For CPU use over an interval, take two readings and subtract.
func ProcUsage(pid int) (Usage, error) {
	var u Usage
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "1234 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return u, fmt.Errorf("netlab: VmRSS of %d: %q", pid, rest)
				}
				u.RSS = kb * 1024
			}
		}
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return u, err
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return u, fmt.Errorf("netlab: malformed /proc/%d/stat", pid)
	}
	// Fields after the command: state is field 3, utime 14, stime 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return u, fmt.Errorf("netlab: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("netlab: bad times in /proc/%d/stat", pid)
	}
	u.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	return u, nil
}

// Pids returns keepalived's parent pid and, if it runs, its VRRP child's.
func (k *Keepalived) Pids() []int {
	pids := []int{k.parent.Pid()}
	if pid, err := k.ChildPid(); err == nil {
		pids = append(pids, pid)
	}
	return pids
}
