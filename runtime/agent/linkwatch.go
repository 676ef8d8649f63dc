package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchLinks follows the host's links over rtnetlink: it subscribes to
// link notifications first and then lists every link, so no change between
// the two is lost; the listing is reported before it returns. When the
// subscription fails (a receive error, or a socket buffer overrun that
// lost notifications), it subscribes and lists again after a short pause,
// so the agent's view is whole again. It stops when ctx ends.
func (LinuxNetwork) WatchLinks(ctx context.Context, report LinkReport, warn func(error)) error {
	_, err := startLinkWatcher(ctx, netns.None(), report, warn)
	return err
}

// startLinkWatcher watches the links of namespace ns (netns.None(): the
// caller's own, as the agent does; tests pass a namespace of their own).
func startLinkWatcher(ctx context.Context, ns netns.NsHandle, report LinkReport, warn func(error)) (*linkWatcher, error) {
	w := &linkWatcher{ctx: ctx, ns: ns, report: report, warn: warn, errs: make(chan error, 1)}
	first := w.subscribe()
	go w.run()
	return w, first
}

type linkWatcher struct {
	ctx    context.Context
	ns     netns.NsHandle
	report LinkReport
	warn   func(error)
	// errs receives the subscription's error callbacks; a stale error of
	// an earlier subscription costs at most one extra resubscription.
	errs chan error
	// The current subscription; nil between a failure and the next try.
	updates chan netlink.LinkUpdate
	done    chan struct{}
}

// retryAfter is the pause before a new subscription, so a socket that
// keeps failing costs a log line four times a second, not a busy loop.
const retryAfter = 250 * time.Millisecond

func (w *linkWatcher) subscribe() error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	opts := netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case w.errs <- err:
			default:
			}
		},
	}
	if w.ns.IsOpen() {
		ns := w.ns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		close(done)
		return fmt.Errorf("subscribing to link changes: %w", err)
	}
	links, err := listLinks(w.ns)
	if err != nil {
		close(done)
		return fmt.Errorf("listing links: %w", err)
	}
	w.updates, w.done = updates, done
	w.report(true, links)
	return nil
}

// unsubscribe ends the current subscription and lets the library's reader
// finish (it may be blocked on a full channel).
func (w *linkWatcher) unsubscribe() {
	close(w.done)
	go func(updates chan netlink.LinkUpdate) {
		for range updates {
		}
	}(w.updates)
	w.updates, w.done = nil, nil
}

func (w *linkWatcher) run() {
	for {
		if w.updates == nil {
			select {
			case <-w.ctx.Done():
				return
			case <-time.After(retryAfter):
			}
			if err := w.subscribe(); err != nil {
				w.warn(err)
			}
			continue
		}
		select {
		case <-w.ctx.Done():
			w.unsubscribe()
			return
		case u, ok := <-w.updates:
			if !ok {
				w.warn(errors.New("link subscription ended; subscribing again"))
				close(w.done)
				w.updates, w.done = nil, nil
				continue
			}
			w.report(false, []LinkState{linkStateOf(u.Link.Attrs(), u.Header.Type == unix.RTM_DELLINK)})
		case err := <-w.errs:
			// Also errors that leave the subscription running (an
			// interrupted dump, a foreign sender) may have cost
			// notifications: start over with a fresh listing.
			w.warn(fmt.Errorf("link subscription: %w; subscribing again", err))
			w.unsubscribe()
		}
	}
}

func listLinks(ns netns.NsHandle) ([]LinkState, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var links []netlink.Link
	for range 5 { // a dump interrupted by a concurrent change is retried
		links, err = h.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]LinkState, 0, len(links))
	for _, l := range links {
		out = append(out, linkStateOf(l.Attrs(), false))
	}
	return out, nil
}

// linkStateOf decides whether a link can carry VRRP: administratively up,
// carrier present, and operationally up. Virtual devices without a carrier
// notion report the operational state "unknown" and count as up.
func linkStateOf(a *netlink.LinkAttrs, deleted bool) LinkState {
	up := a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0 &&
		(a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)
	return LinkState{Index: a.Index, Name: a.Name, Up: up && !deleted, Gone: deleted, MAC: a.HardwareAddr.String()}
}
