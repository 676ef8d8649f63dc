package agent

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestKeepReading: a watcher's reader stops only when its socket is
// closed — however the close shows (net.ErrClosed from a blocked read,
// EBADF from a read after Close) — and reads past the ENETDOWN a link
// flap leaves pending.
func TestKeepReading(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, true},
		{"ENETDOWN after a link flap", fmt.Errorf("read packet: %w", os.NewSyscallError("recvfrom", syscall.ENETDOWN)), true},
		{"net.ErrClosed", fmt.Errorf("read: %w", net.ErrClosed), false},
		{"os.ErrClosed", os.ErrClosed, false},
		{"EBADF after Close", os.NewSyscallError("recvfrom", syscall.EBADF), false},
	} {
		if got := keepReading(tc.err); got != tc.want {
			t.Errorf("%s: keepReading = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCoalescer: per address and MAC, the first frame is reported at
// once, the next ones within watchReportEvery only counted, and the first
// after it reported with every frame since; another MAC has its own count.
func TestCoalescer(t *testing.T) {
	var c coalescer
	t0 := time.Unix(1000, 0)
	a := netip.MustParseAddr("192.0.2.100")
	m1, m2 := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	type step struct {
		at    time.Duration
		mac   net.HardwareAddr
		count uint64
		due   bool
	}
	for i, s := range []step{
		{0, m1, 1, true},
		{2 * time.Millisecond, m1, 0, false},
		{4 * time.Millisecond, m2, 1, true},
		{6 * time.Millisecond, m1, 0, false},
		{watchReportEvery + time.Millisecond, m1, 3, true},
		{watchReportEvery + 2*time.Millisecond, m2, 0, false},
	} {
		count, due := c.add(a, s.mac, t0.Add(s.at))
		if count != s.count || due != s.due {
			t.Errorf("frame %d (%v, %v): count %d due %v, want %d %v", i, s.at, s.mac, count, due, s.count, s.due)
		}
	}
}
