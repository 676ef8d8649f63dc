// Package impersonation turns evidence that someone speaks VRRP in a
// cluster member's name into alarms: pure (the caller passes the time),
// rate-limited for logs, and listed for /status.
//
// Three kinds of evidence:
//   - own-address: a frame arriving on an interface (runtime/vrrpwatch)
//     carries one of this node's own addresses as its source, or another
//     host's ARP or neighbour advertisement claims one; this node did not
//     send it (outgoing frames are filtered out);
//   - auth-failure: an advert in a listed peer's name failed
//     authentication (the engine's auth-* drop reasons);
//   - vip-claim: another host's ARP or Neighbor Advertisement claimed a
//     VIP this node holds as Active, at a MAC that is not the cluster's
//     (the node decides that; the tracker keeps the MACs it was told).
//
// The source MAC last seen for the address (from the watcher) is reported
// with the alarm: that is the port to look for on the switch.
package impersonation

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Kind is what kind of impersonation an alarm is about; String is a stable label.
type Kind uint8

const (
	OwnAddress  Kind = iota + 1 // "own-address"
	AuthFailure                 // "auth-failure"
	VIPClaim                    // "vip-claim"
)

func (k Kind) String() string {
	switch k {
	case OwnAddress:
		return "own-address"
	case AuthFailure:
		return "auth-failure"
	case VIPClaim:
		return "vip-claim"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Kinds lists every kind, for metric setup.
func Kinds() []Kind { return []Kind{OwnAddress, AuthFailure, VIPClaim} }

// Alarm is one raised alarm: one kind, one address, one place.
type Alarm struct {
	Kind Kind
	Addr netip.Addr
	// Where: the interface (own-address) or the VRRP group (auth-failure,
	// vip-claim).
	Where string
	// MAC is the Ethernet source last seen with Addr as IP source on a
	// watched interface, and when; empty when none was seen.
	MAC     string
	MACSeen time.Time
	// MACs are the distinct Ethernet sources seen with Addr within
	// ClearAfter, most recent first (at most maxMACs): for a peer's
	// address the real peer's and the forger's appear side by side.
	MACs []MACSeen
	// Reason is the last drop reason (auth-failure), e.g. "auth-bad-mac",
	// or the kind of the last claim (vip-claim), e.g. "arp-reply".
	Reason      string
	Since, Last time.Time
	Count       uint64
}

// Event is an alarm to log now: raised for the first time, still going on
// (at most once per LogEvery, with the count since the last line), or
// cleared after ClearAfter without evidence.
type Event struct {
	Alarm
	Raised, Cleared bool
	// Unlogged is how much evidence arrived since the previous log line.
	Unlogged uint64
}

type key struct {
	kind  Kind
	addr  netip.Addr
	where string
}

type state struct {
	Alarm
	lastLog  time.Time
	unlogged uint64
	// claimed are the MACs a VIP was claimed at (vip-claim), most recent
	// first: a VIP is no member's address, so t.macs has none for it.
	claimed []MACSeen
}

// MACSeen is one Ethernet source seen with an address.
type MACSeen struct {
	MAC   string
	Last  time.Time
	Count uint64
}

// maxMACs bounds the MACs remembered per address.
const maxMACs = 4

// Tracker holds the alarms of one node. It is not safe for concurrent use.
type Tracker struct {
	// ClearAfter without evidence clears an alarm (default 1m).
	ClearAfter time.Duration
	// LogEvery limits the log lines of one alarm (default 10s).
	LogEvery time.Duration

	own     map[netip.Addr]bool
	watched map[netip.Addr]bool      // own and peers: MACs are kept for these only
	macs    map[netip.Addr][]MACSeen // most recent first
	alarms  map[key]*state
}

// New returns a Tracker for a node with the given own addresses and peers.
func New(own, peers []netip.Addr) *Tracker {
	t := &Tracker{ClearAfter: time.Minute, LogEvery: 10 * time.Second, macs: map[netip.Addr][]MACSeen{}, alarms: map[key]*state{}}
	t.SetAddresses(own, peers)
	return t
}

// SetAddresses replaces the node's own addresses and its peers' (a new plan).
func (t *Tracker) SetAddresses(own, peers []netip.Addr) {
	t.own, t.watched = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, a := range own {
		a = norm(a)
		t.own[a], t.watched[a] = true, true
	}
	for _, a := range peers {
		t.watched[norm(a)] = true
	}
	for a := range t.macs {
		if !t.watched[a] {
			delete(t.macs, a)
		}
	}
}

func norm(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// Frame records an advert that arrived on iface from src with Ethernet
// source mac (runtime/vrrpwatch). It returns an event to log when src is
// one of this node's own addresses and a line is due.
func (t *Tracker) Frame(now time.Time, iface string, src netip.Addr, mac net.HardwareAddr) *Event {
	src = norm(src)
	if !t.watched[src] {
		return nil
	}
	t.seen(now, src, mac.String())
	if !t.own[src] {
		return nil
	}
	return t.raise(now, key{OwnAddress, src, iface}, "")
}

// OwnClaim records count ARP packets or neighbour advertisements that
// claimed addr, one of this node's own addresses, on iface at mac (kind:
// how, e.g. "arp-reply"): the own-address alarm, with the claim's kind as
// its reason.
func (t *Tracker) OwnClaim(now time.Time, iface string, addr netip.Addr, mac string, kind string, count uint64) *Event {
	addr = norm(addr)
	if !t.own[addr] {
		return nil
	}
	t.macs[addr] = seenIn(t.macs[addr], now, mac, max(count, 1))
	return t.raiseN(now, key{OwnAddress, addr, iface}, kind, max(count, 1), "")
}

// PeerWithMAC returns the peer address whose adverts came from mac within
// ClearAfter before now, if any (the watcher's frames, before any check:
// a forger's MAC shows there too, under the alarms of its forgeries).
func (t *Tracker) PeerWithMAC(now time.Time, mac string) (netip.Addr, bool) {
	for addr, list := range t.macs {
		if t.own[addr] {
			continue
		}
		for _, m := range list {
			if m.MAC == mac && now.Sub(m.Last) < t.ClearAfter {
				return addr, true
			}
		}
	}
	return netip.Addr{}, false
}

// IsOwn reports whether addr is one of this node's own addresses.
func (t *Tracker) IsOwn(addr netip.Addr) bool { return t.own[norm(addr)] }

// AuthFailure records an advert in peer src's name that failed
// authentication in group with the engine's drop reason.
func (t *Tracker) AuthFailure(now time.Time, group string, src netip.Addr, reason string) *Event {
	return t.raise(now, key{AuthFailure, norm(src), group}, reason)
}

// Claim records count frames that claimed vip, held by this node as the
// Active of group, at mac (kind: how, e.g. "arp-reply").
func (t *Tracker) Claim(now time.Time, group string, vip netip.Addr, mac string, kind string, count uint64) *Event {
	return t.raiseN(now, key{VIPClaim, norm(vip), group}, kind, max(count, 1), mac)
}

func (t *Tracker) raise(now time.Time, k key, reason string) *Event {
	return t.raiseN(now, k, reason, 1, "")
}

// raiseN records n pieces of evidence for alarm k; claimedBy, when set, is
// the MAC a VIP was claimed at, kept with the alarm.
func (t *Tracker) raiseN(now time.Time, k key, reason string, n uint64, claimedBy string) *Event {
	s := t.alarms[k]
	raised := s == nil
	if raised {
		s = &state{Alarm: Alarm{Kind: k.kind, Addr: k.addr, Where: k.where, Since: now}}
		t.alarms[k] = s
	}
	if claimedBy != "" {
		s.claimed = seenIn(s.claimed, now, claimedBy, n)
	}
	s.Last, s.Reason = now, reason
	s.Count += n
	s.unlogged += n
	if !raised && now.Sub(s.lastLog) < t.LogEvery {
		return nil
	}
	ev := &Event{Alarm: t.view(s), Raised: raised, Unlogged: s.unlogged}
	s.lastLog, s.unlogged = now, 0
	return ev
}

// seen moves mac to the front of src's list.
func (t *Tracker) seen(now time.Time, src netip.Addr, mac string) {
	t.macs[src] = seenIn(t.macs[src], now, mac, 1)
}

// seenIn moves mac to the front of list, counting n more sightings.
func seenIn(list []MACSeen, now time.Time, mac string, n uint64) []MACSeen {
	var e MACSeen
	if i := slices.IndexFunc(list, func(m MACSeen) bool { return m.MAC == mac }); i >= 0 {
		e = list[i]
		list = slices.Delete(list, i, i+1)
	}
	e.MAC, e.Last = mac, now
	e.Count += n
	list = slices.Insert(list, 0, e)
	if len(list) > maxMACs {
		list = list[:maxMACs]
	}
	return list
}

func (t *Tracker) view(s *state) Alarm {
	a := s.Alarm
	macs := t.macs[a.Addr]
	if a.Kind == VIPClaim {
		macs = s.claimed
	}
	for _, m := range macs {
		if s.Last.Sub(m.Last) >= t.ClearAfter {
			continue
		}
		if a.MAC == "" {
			a.MAC, a.MACSeen = m.MAC, m.Last
		}
		a.MACs = append(a.MACs, m)
	}
	return a
}

// Expire clears alarms without evidence for ClearAfter and returns them.
func (t *Tracker) Expire(now time.Time) []Event {
	if len(t.alarms) == 0 {
		return nil // the common case, every tick of the node
	}
	var out []Event
	for k, s := range t.alarms {
		if now.Sub(s.Last) >= t.ClearAfter {
			out = append(out, Event{Alarm: t.view(s), Cleared: true, Unlogged: s.unlogged})
			delete(t.alarms, k)
		}
	}
	sortAlarms(out, func(e Event) Alarm { return e.Alarm })
	return out
}

// Alarms lists the alarms raised and not cleared, in a stable order.
func (t *Tracker) Alarms() []Alarm {
	out := make([]Alarm, 0, len(t.alarms))
	for _, s := range t.alarms {
		out = append(out, t.view(s))
	}
	sortAlarms(out, func(a Alarm) Alarm { return a })
	return out
}

func sortAlarms[T any](list []T, get func(T) Alarm) {
	slices.SortFunc(list, func(x, y T) int {
		a, b := get(x), get(y)
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		switch {
		case a.Where < b.Where:
			return -1
		case a.Where > b.Where:
			return 1
		}
		return 0
	})
}
