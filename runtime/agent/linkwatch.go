package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// WatchLinks follows the host's links over rtnetlink: it subscribes to
// link notifications first and then lists every link, so no change between
// the two is lost; the listing is reported before it returns. When the
// subscription fails (a receive error, or a socket buffer overrun that
// lost notifications), it subscribes and lists again after a short pause, so the
// agent's view is whole again. It stops when ctx ends.
func (LinuxNetwork) WatchLinks(ctx context.Context, report LinkReport, warn func(error)) error {
	w := &linkWatcher{ctx: ctx, report: report, warn: warn}
	first := w.subscribe()
	go w.run()
	return first
}

type linkWatcher struct {
	ctx    context.Context
	report LinkReport
	warn   func(error)
	// The current subscription; replaced by subscribe.
	updates chan netlink.LinkUpdate
	done    chan struct{}
	errs    chan error
}

// retryAfter is the pause before a new subscription, so a socket that
// keeps failing costs a log line four times a second, not a busy loop.
const retryAfter = 250 * time.Millisecond

func (w *linkWatcher) subscribe() error {
	w.updates = make(chan netlink.LinkUpdate, 64)
	w.done = make(chan struct{})
	w.errs = make(chan error, 1)
	errs := w.errs
	err := netlink.LinkSubscribeWithOptions(w.updates, w.done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		close(w.done)
		w.updates = nil
		return fmt.Errorf("subscribing to link changes: %w", err)
	}
	links, err := listLinks()
	if err != nil {
		close(w.done)
		w.updates = nil
		return fmt.Errorf("listing links: %w", err)
	}
	w.report(true, links)
	return nil
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
			close(w.done)
			go func(updates chan netlink.LinkUpdate) {
				for range updates { // let the library's reader finish
				}
			}(w.updates)
			return
		case u, ok := <-w.updates:
			if !ok { // the subscription ended (receive error)
				w.warn(errors.New("link subscription ended; subscribing again"))
				close(w.done)
				w.updates = nil
				continue
			}
			w.report(false, []LinkState{linkStateOf(u.Link.Attrs(), u.Header.Type == unix.RTM_DELLINK)})
		case err := <-w.errs:
			w.warn(fmt.Errorf("link subscription: %w; subscribing again", err))
			// Errors that do not end the subscription (an interrupted
			// dump, a message from a foreign sender) may have lost
			// notifications: start over with a fresh listing.
			close(w.done)
			for range w.updates { // drained until the library closes it
			}
			w.updates = nil
		}
	}
}

func listLinks() ([]LinkState, error) {
	var links []netlink.Link
	var err error
	for range 5 { // a dump interrupted by a concurrent change is retried
		links, err = netlink.LinkList()
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
	return LinkState{Index: a.Index, Name: a.Name, Up: up && !deleted, Gone: deleted}
}
