package node

import (
	"net/netip"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrpplan"
)

// Unicast groups (plan.Group.Unicast), for networks without multicast: the
// engine encodes and signs one advert; the node sends a copy to every peer
// of the plan, each with the IPv4 pseudo-header checksum of its real
// destination (vrrp.AppendReaddressed). The socket is the one a multicast
// group on the same interface, family and source would use: it receives
// unicast adverts addressed to the node as well, and the engine decides
// by destination and TTL what it accepts (runtime/vrrp, unicast.go).

// emitAdvert emits one advert of member m: to the group address, or one
// copy per peer for a unicast group.
func (n *Node) emitAdvert(m *member, data []byte) {
	g := &m.group
	if g.Unicast == nil {
		n.emit(m.advertEffect(data))
		return
	}
	form := vrrpplan.ChecksumForm(g)
	// One allocation for every copy: the effects are carried out before
	// the next Step, and the engine's advert is fresh for each send.
	buf := make([]byte, 0, len(g.Peers)*len(data))
	for _, p := range g.Peers {
		start := len(buf)
		var err error
		if buf, err = vrrp.AppendReaddressed(buf, data, form, g.Source, p.Address); err != nil {
			// The plan and the engine agree on family and form; a failure is a bug.
			n.log.Error("cannot readdress a unicast advert", "group", g.Name, "peer", p.Name, "err", err)
			continue
		}
		n.emit(SendAdvert{Socket: m.sendSocket(), Group: g.Name, Data: buf[start:len(buf):len(buf)], To: p.Address, Peer: p.Name})
	}
}

// advertEffect is the SendAdvert of a multicast group's advert. The
// engine hands out an unchanged advert's bytes again (the same slice), so
// the effect made for it last is used again too: an Active's advert
// allocates nothing.
func (m *member) advertEffect(data []byte) Effect {
	e := SendAdvert{Socket: m.sendSocket(), Group: m.group.Name, Data: data}
	if last, ok := m.lastAdvert.(SendAdvert); !ok || len(data) == 0 || len(last.Data) != len(data) ||
		&last.Data[0] != &data[0] || last.Socket != e.Socket || last.Group != e.Group {
		m.lastAdvert = e
	}
	return m.lastAdvert
}

// keepsLinkLocal: the socket sends from an IPv6 link-local address, which
// the agent adds when the interface lacks it (a unicast group may send
// from a global address instead, which the agent never touches; a virtual
// MAC's macvlan gets it with SetVMAC each time it comes up).
func (s Socket) keepsLinkLocal() bool {
	return s.IPv6 && s.Source.IsLinkLocalUnicast() && !s.SendOnly
}

// sharedVRID reports whether a packet for vrid that arrived on socket s
// belongs to a group on another socket of the same interface and family:
// every raw socket of an interface receives every advert addressed to the
// node (and every multicast one), so that socket has its own copy.
func (n *Node) sharedVRID(s Socket, vrid int) bool {
	for _, m := range n.members {
		o := m.socket()
		if m.group.VRID == vrid && o != s && o.Interface == s.Interface && o.IPv6 == s.IPv6 {
			return true
		}
	}
	return false
}

// UnicastStatus is a unicast group's transport in /status.
type UnicastStatus struct {
	MinTTL int           `json:"minTTL"`
	Peers  []UnicastPeer `json:"peers"`
}

// UnicastPeer is one peer of a unicast group: what was sent to it and
// heard from it.
type UnicastPeer struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	External bool   `json:"external,omitempty"`
	// AdvertsSent and SendErrors count the copies written to it (filled
	// in by the executor, which does the sending).
	AdvertsSent uint64 `json:"advertsSent"`
	SendErrors  uint64 `json:"sendErrors"`
	// LastAdvert is when its last accepted advert arrived; AdvertsReceived
	// counts them; Drops counts its adverts dropped, by reason.
	LastAdvert      time.Time         `json:"lastAdvert,omitzero"`
	AdvertsReceived uint64            `json:"advertsReceived"`
	Drops           map[string]uint64 `json:"drops,omitempty"`
}

// unicastStatus is m's unicast section of /status; nil for multicast.
func unicastStatus(m *member, st vrrp.Stats) *UnicastStatus {
	g := &m.group
	if g.Unicast == nil {
		return nil
	}
	us := &UnicastStatus{MinTTL: g.Unicast.MinTTL, Peers: []UnicastPeer{}}
	byAddr := map[netip.Addr]*vrrp.PeerStats{}
	for i := range st.Peers {
		byAddr[st.Peers[i].Addr] = &st.Peers[i]
	}
	for _, p := range g.Peers {
		up := UnicastPeer{Name: p.Name, Address: p.Address.String(), External: p.External}
		if ps := byAddr[p.Address.Unmap().WithZone("")]; ps != nil {
			up.LastAdvert, up.AdvertsReceived = ps.LastSeen, ps.Accepted
			for _, r := range vrrp.DropReasons() {
				if c := ps.Drops[r]; c > 0 {
					if up.Drops == nil {
						up.Drops = map[string]uint64{}
					}
					up.Drops[r.String()] = c
				}
			}
		}
		us.Peers = append(us.Peers, up)
	}
	return us
}
