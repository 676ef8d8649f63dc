package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// SkewTime and ActiveDownInterval as RFC 9568 defines them.
func SkewTime(priority int, interval time.Duration) time.Duration {
	return time.Duration(256-priority) * interval / 256
}

func ActiveDownInterval(priority int, interval time.Duration) time.Duration {
	return 3*interval + SkewTime(priority, interval)
}

// HandoverGap finds, among the adverts of VRID vrid captured in
// [from, until), the handover from the old Active (src old) to the new one
// (src new): for a crash, the time from old's last advert before new's
// first one; for a graceful stop, the time from old's priority-0 advert to
// new's first advert after it.
func HandoverGap(ads []netlab.VRRPAdvert, vrid int, old, new string, from, until time.Time, graceful bool) (time.Duration, error) {
	var window []netlab.VRRPAdvert
	for _, ad := range ads {
		if ad.VRID == vrid && !ad.Time.Before(from) && ad.Time.Before(until) {
			window = append(window, ad)
		}
	}
	var lastOld time.Time
	for _, ad := range window {
		switch {
		case ad.Src == old && graceful && ad.Priority == 0:
			lastOld = ad.Time
		case ad.Src == old && !graceful && ad.Priority > 0:
			lastOld = ad.Time
		case ad.Src == new && !lastOld.IsZero():
			return ad.Time.Sub(lastOld), nil
		}
	}
	if lastOld.IsZero() {
		kind := "advert"
		if graceful {
			kind = "priority-0 advert"
		}
		return 0, fmt.Errorf("no %s from %s between %s and %s", kind, old, from.Format("15:04:05.000"), until.Format("15:04:05.000"))
	}
	return 0, fmt.Errorf("no advert from %s after %s's last one", new, old)
}

// HandoverOverhead is HandoverGap less what the protocol itself must
// wait for a Backup of priority to act (Active_Down_Interval after a
// crash, Skew_Time after a priority-0 advert): the implementation's own
// share of the handover, which is what the benchmarks compare.
func HandoverOverhead(ads []netlab.VRRPAdvert, vrid int, old, new string, from, until time.Time, graceful bool, priority int, interval time.Duration) (time.Duration, error) {
	gap, err := HandoverGap(ads, vrid, old, new, from, until, graceful)
	if err != nil {
		return 0, err
	}
	if graceful {
		return gap - SkewTime(priority, interval), nil
	}
	return gap - ActiveDownInterval(priority, interval), nil
}

// CPUShare is the fraction of a core the processes pids use together
// during d (this call sleeps d).
func CPUShare(d time.Duration, pids ...int) (float64, error) {
	total := func() (time.Duration, error) {
		var sum time.Duration
		for _, p := range pids {
			t, err := CPUTime(p)
			if err != nil {
				return 0, err
			}
			sum += t
		}
		return sum, nil
	}
	cpu0, err := total()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(d)
	elapsed := time.Since(start)
	cpu1, err := total()
	if err != nil {
		return 0, err
	}
	return float64(cpu1-cpu0) / float64(elapsed), nil
}

// CPUTime is the CPU time all threads of a process have used so far, from
// the scheduler's nanosecond accounting (/proc/PID/task/*/schedstat); the
// tick-based utime/stime of /proc/PID/stat is too coarse for a process that
// uses about 1 % of a core.
func CPUTime(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, task.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %v", pid, task.Name(), err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// RSS is the resident set size of a process in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
