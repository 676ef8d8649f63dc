package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// Holders is an observer that is not the agents: every Period it lists the
// addresses of every interface in each watched node's namespace (netlink,
// as `ip addr` does) and records, per VIP, who held it from when.
type Holders struct {
	Period time.Duration

	nodes   []string
	vips    []netip.Addr
	handles []*netlink.Handle

	mu      sync.Mutex
	changes map[netip.Addr][]HolderChange
	last    time.Time // time of the latest sample
	errs    int

	stop chan struct{}
	done chan struct{}
}

// HolderChange: from At on, exactly Nodes held the VIP (sorted; empty: nobody).
type HolderChange struct {
	At    time.Time
	Nodes []string
}

// Interval is a span of time.
type Interval struct{ From, To time.Time }

// Duration is To - From.
func (i Interval) Duration() time.Duration { return i.To.Sub(i.From) }

// StartHolders starts sampling; it stops at cleanup (or with Stop).
func StartHolders(t testing.TB, lab *netlab.Lab, nodes []string, vips []netip.Addr, period time.Duration) *Holders {
	t.Helper()
	h := &Holders{Period: period, nodes: slices.Clone(nodes), vips: slices.Clone(vips),
		changes: map[netip.Addr][]HolderChange{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, n := range nodes {
		ns, err := netns.GetFromName(lab.NS(n))
		if err != nil {
			t.Fatalf("holders: namespace of %s: %v", n, err)
		}
		hd, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			t.Fatalf("holders: netlink in %s: %v", n, err)
		}
		h.handles = append(h.handles, hd)
	}
	h.sample()
	go h.run()
	t.Cleanup(h.Stop)
	return h
}

// Stop ends sampling; the records stay.
func (h *Holders) Stop() {
	select {
	case <-h.stop:
		return
	default:
	}
	close(h.stop)
	<-h.done
	for _, hd := range h.handles {
		hd.Close()
	}
}

func (h *Holders) run() {
	defer close(h.done)
	tick := time.NewTicker(h.Period)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
			h.sample()
		}
	}
}

func (h *Holders) sample() {
	held := map[netip.Addr][]string{}
	errs := 0
	for i, hd := range h.handles {
		addrs, err := hd.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			errs++
			continue
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if ok && slices.Contains(h.vips, ip.Unmap()) && !slices.Contains(held[ip.Unmap()], h.nodes[i]) {
				held[ip.Unmap()] = append(held[ip.Unmap()], h.nodes[i])
			}
		}
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs += errs
	h.last = now
	for _, v := range h.vips {
		nodes := held[v]
		slices.Sort(nodes)
		cs := h.changes[v]
		if len(cs) == 0 || !slices.Equal(cs[len(cs)-1].Nodes, nodes) {
			h.changes[v] = append(cs, HolderChange{At: now, Nodes: nodes})
		}
	}
}

// Changes returns the recorded changes of vip.
func (h *Holders) Changes(vip netip.Addr) []HolderChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.changes[vip])
}

// Now returns who holds vip at the latest sample.
func (h *Holders) Now(vip netip.Addr) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.changes[vip]
	if len(cs) == 0 {
		return nil
	}
	return slices.Clone(cs[len(cs)-1].Nodes)
}

// WaitSole waits until node alone has held vip for stable and reports
// whether that happened within timeout.
func (h *Holders) WaitSole(vip netip.Addr, node string, stable, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		cs := h.changes[vip]
		ok := len(cs) > 0 && slices.Equal(cs[len(cs)-1].Nodes, []string{node}) && h.last.Sub(cs[len(cs)-1].At) >= stable
		h.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(h.Period)
	}
	return false
}

// Periods returns the spans within [from, to) during which the holders of
// vip satisfied cond, clipped to the window.
func (h *Holders) Periods(vip netip.Addr, from, to time.Time, cond func(nodes []string) bool) []Interval {
	cs := h.Changes(vip)
	var out []Interval
	for i, c := range cs {
		end := to
		if i+1 < len(cs) {
			end = cs[i+1].At
		}
		start := c.At
		if start.Before(from) {
			start = from
		}
		if end.After(to) {
			end = to
		}
		if !start.Before(end) || !cond(c.Nodes) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].To.Equal(start) {
			out[n-1].To = end
			continue
		}
		out = append(out, Interval{start, end})
	}
	return out
}

// SampleErrors is how many listings failed (a sampler that cannot see is
// no observer).
func (h *Holders) SampleErrors() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errs
}

// String summarises the changes of vip, for failure messages.
func (h *Holders) String(vip netip.Addr, from time.Time) string {
	s := ""
	for _, c := range h.Changes(vip) {
		if c.At.Before(from) {
			continue
		}
		s += fmt.Sprintf("  %s %v\n", c.At.Format("15:04:05.000"), c.Nodes)
	}
	return s
}
