package agent

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deadlineTimer wakes the loop at the engine's next deadline.
//
// Go's runtime timers sleep in epoll_pwait with a timeout in whole
// milliseconds, so a timer can fire up to about a millisecond late. That
// lateness would add straight to every failover (the Active_Down_Interval
// timer) and to every advert interval. A timerfd has nanosecond
// resolution and wakes the netpoller the moment it expires, so the loop
// uses one, and falls back to a runtime timer where none can be created.
type deadlineTimer struct {
	C     chan struct{}
	fd    int
	file  *os.File
	timer *time.Timer // fallback
}

func newDeadlineTimer() *deadlineTimer {
	t := &deadlineTimer{C: make(chan struct{}, 1), fd: -1}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		t.startFallback()
		return t
	}
	t.fd = fd
	t.file = os.NewFile(uintptr(fd), "timerfd")
	rc, err := t.file.SyscallConn()
	if err != nil {
		t.file.Close()
		t.file = nil
		t.startFallback()
		return t
	}
	go func() {
		var buf [8]byte
		// Raw system calls, here and in settime: neither can block (the
		// fd is non-blocking; the netpoller waits for it), and the
		// runtime's bookkeeping for ordinary system calls wakes its sysmon
		// thread every time, which at 10 ms adverts was a third of the
		// agent's CPU.
		read := func(fd uintptr) bool {
			_, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			return errno != unix.EAGAIN
		}
		for {
			if err := rc.Read(read); err != nil {
				return // closed
			}
			t.fire()
		}
	}()
	return t
}

func (t *deadlineTimer) startFallback() {
	t.timer = time.AfterFunc(time.Hour, t.fire)
	t.timer.Stop()
}

func (t *deadlineTimer) fire() {
	select {
	case t.C <- struct{}{}:
	default: // one pending wake-up is enough: Tick fires every due timer
	}
}

// Reset arms the timer to fire after d (at once when d <= 0).
func (t *deadlineTimer) Reset(d time.Duration) {
	if t.file == nil {
		t.timer.Reset(d)
		return
	}
	if d <= 0 {
		d = 1 // 0 would disarm
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	if err := settime(t.fd, &spec); err != nil {
		// Should not happen; a late tick beats a lost one.
		t.file.Close()
		t.file = nil
		t.startFallback()
		t.timer.Reset(d)
	}
}

// Stop disarms the timer.
func (t *deadlineTimer) Stop() {
	if t.file == nil {
		t.timer.Stop()
		return
	}
	settime(t.fd, &unix.ItimerSpec{})
}

// settime is timerfd_settime as a raw system call (see above).
func settime(fd int, spec *unix.ItimerSpec) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(fd), 0, uintptr(unsafe.Pointer(spec)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Close releases the timerfd.
func (t *deadlineTimer) Close() {
	if t.file != nil {
		t.file.Close()
	} else {
		t.timer.Stop()
	}
}
