package agent

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// poller is the executor's event loop: one epoll set over a timerfd (the
// node's next deadline, to the nanosecond), an eventfd (work posted by
// other goroutines: link reports, plan reads, status requests) and the
// sockets the node opened. The epoll descriptor itself sits in Go's
// network poller, so the loop goroutine parks there like any network
// read, and one wake-up handles everything that is ready.
//
// Per advert of an Active node that is: the runtime's poll, one epoll_wait
// of our own, the sendmsg and the timerfd_settime. The timerfd is not read:
// setting it again clears its readiness. Our own calls are raw system
// calls that cannot block (the runtime's bookkeeping for ordinary ones
// wakes its monitor thread every time, which at 10 ms adverts would cost
// more than the work).
type poller struct {
	epfd, timerfd, wakefd int
	file                  *os.File // epfd, registered with Go's poller
	rc                    syscall.RawConn
	handlers              map[int32]func()
	events                [32]unix.EpollEvent
	timerFired            bool
	armed                 time.Time
	// more: a handler left work behind (a socket read in part): look
	// again before parking, since Go's poller reports the epoll
	// descriptor again only when something new arrives.
	more bool

	mu      sync.Mutex
	queue   []func()
	closed  bool
	running []func() // the queue being run, reused
}

func newPoller() (*poller, error) {
	p := &poller{epfd: -1, timerfd: -1, wakefd: -1, handlers: map[int32]func(){}}
	var err error
	if p.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if p.timerfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		p.close()
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	if p.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		p.close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	for _, fd := range []int{p.timerfd, p.wakefd} {
		if err := p.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
			p.close()
			return nil, err
		}
	}
	if err := unix.SetNonblock(p.epfd, true); err != nil {
		p.close()
		return nil, err
	}
	// A non-blocking descriptor given to os.NewFile joins Go's poller.
	p.file = os.NewFile(uintptr(p.epfd), "epoll")
	if p.rc, err = p.file.SyscallConn(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *poller) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// add watches fd for readability; h runs in the loop when it is readable
// (level-triggered: h should read until nothing is left).
func (p *poller) add(fd int, h func()) error {
	if err := p.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
		return err
	}
	p.handlers[int32(fd)] = h
	return nil
}

// pause stops (or resumes) watching fd without forgetting its handler.
func (p *poller) pause(fd int, paused bool) {
	events := uint32(unix.EPOLLIN)
	if paused {
		events = 0
	}
	_ = p.ctl(unix.EPOLL_CTL_MOD, fd, events)
}

// remove forgets fd; call it before closing fd.
func (p *poller) remove(fd int) {
	_ = p.ctl(unix.EPOLL_CTL_DEL, fd, 0)
	delete(p.handlers, int32(fd))
}

// arm sets the timer to fire at deadline (zero: disarm). After the timer
// fired it must be set again, which also clears its readiness.
func (p *poller) arm(deadline time.Time) {
	if deadline.Equal(p.armed) && !p.timerFired {
		return
	}
	p.armed, p.timerFired = deadline, false
	var spec unix.ItimerSpec
	if !deadline.IsZero() {
		d := max(time.Until(deadline), 1) // 0 would disarm
		spec.Value = unix.NsecToTimespec(d.Nanoseconds())
	}
	_, _, _ = unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(p.timerfd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
}

// post runs f in the loop. It never blocks; false when the loop has ended.
func (p *poller) post(f func()) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	wake := len(p.queue) == 0
	p.queue = append(p.queue, f)
	p.mu.Unlock()
	if wake {
		one := uint64(1)
		_, _ = unix.Write(p.wakefd, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
	return true
}

// run waits for events and dispatches them until done reports true after
// a round: onTimer when the timer fired, posted work, socket handlers,
// then after (which sets the timer for the next round).
func (p *poller) run(onTimer func(), after func(), done func() bool) error {
	err := p.rc.Read(func(uintptr) bool {
		for {
			r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&p.events[0])),
				uintptr(len(p.events)), 0, 0, 0)
			n := int(r)
			if errno != 0 || n == 0 {
				return done() // nothing ready: park in Go's poller until something is
			}
			for _, ev := range p.events[:n] {
				switch ev.Fd {
				case int32(p.timerfd):
					p.timerFired = true
					onTimer()
				case int32(p.wakefd):
					p.runPosted()
				default:
					if h := p.handlers[ev.Fd]; h != nil {
						h()
					}
				}
			}
			after()
			if done() {
				return true
			}
			if n < len(p.events) && !p.more {
				return false
			}
			p.more = false
		}
	})
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

func (p *poller) runPosted() {
	var buf [8]byte
	_, _, _ = unix.RawSyscall(unix.SYS_READ, uintptr(p.wakefd), uintptr(unsafe.Pointer(&buf[0])), 8)
	p.mu.Lock()
	p.running, p.queue = p.queue, p.running[:0]
	p.mu.Unlock()
	for i, f := range p.running {
		f()
		p.running[i] = nil
	}
}

// drain runs what was posted and not yet run (at the end, so that no
// caller waits forever), then refuses further posts.
func (p *poller) drain() {
	for {
		p.mu.Lock()
		q := p.queue
		p.queue = nil
		if len(q) == 0 {
			p.closed = true
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for _, f := range q {
			f()
		}
	}
}

func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	if p.file != nil {
		p.file.Close() // closes epfd
	} else if p.epfd >= 0 {
		unix.Close(p.epfd)
	}
	for _, fd := range []int{p.timerfd, p.wakefd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
