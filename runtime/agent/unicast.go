package agent

import (
	"errors"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/node"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Unicast groups: the node asks for one SendAdvert per peer (To set); the
// executor writes each with vrrpnet's WritePacketTo and counts, per group
// and peer, the copies sent and refused. /status and the per-peer metrics
// join these counts with what the node knows of each peer (last advert
// heard, drops).

// peerKey names one peer of one unicast group.
type peerKey struct {
	group string
	to    netip.Addr
}

// peerSends is what the executor sent to one peer.
type peerSends struct {
	sent, errors uint64
	failing      bool // sends to it fail: logged once, until one works again
}

// sendUnicast writes one copy of a unicast group's advert to its peer and
// reports whether it went out.
func (a *Agent) sendUnicast(e node.SendAdvert, s *vrrpSocket) bool {
	k := peerKey{e.Group, e.To}
	p := a.unicast[k]
	if p == nil {
		p = &peerSends{}
		a.unicast[k] = p
	}
	err := errors.New("socket not open")
	if s != nil {
		err = errors.New("this socket cannot send unicast")
		if uc, ok := s.pc.(UnicastConn); ok {
			err = uc.WritePacketTo(e.Data, e.To)
		}
	}
	if err != nil {
		p.errors++
		a.met.sendErrors.WithLabelValues(e.Group).Inc()
		if !p.failing {
			p.failing = true
			a.log.Warn("cannot send advert to unicast peer", "group", e.Group, "peer", e.Peer, "to", e.To, "err", err)
		}
		return false
	}
	if p.failing {
		p.failing = false
		a.log.Info("sending adverts to unicast peer again", "group", e.Group, "peer", e.Peer, "to", e.To)
	}
	p.sent++
	return true
}

// forgetUnicast drops the counts of a group that left the plan.
func (a *Agent) forgetUnicast(group string) {
	for k := range a.unicast {
		if k.group == group {
			delete(a.unicast, k)
		}
	}
}

// fillUnicast adds the executor's send counts to the unicast peers of s.
func (a *Agent) fillUnicast(s *node.Status) {
	for i := range s.Groups {
		us := s.Groups[i].Unicast
		if us == nil {
			continue
		}
		for j := range us.Peers {
			up := &us.Peers[j]
			addr, err := netip.ParseAddr(up.Address)
			if err != nil {
				continue
			}
			if p := a.unicast[peerKey{s.Groups[i].Name, addr}]; p != nil {
				up.AdvertsSent, up.SendErrors = p.sent, p.errors
			}
		}
	}
}

// unicastGroups is the unicast groups' part of /status, for the metrics.
func (a *Agent) unicastGroups() []node.GroupStatus {
	var out []node.GroupStatus
	a.query(func() {
		s := a.node.Status()
		if s == nil {
			return
		}
		a.fillUnicast(s)
		for _, g := range s.Groups {
			if g.Unicast != nil {
				out = append(out, g)
			}
		}
	})
	return out
}

// Per-peer metrics of unicast groups, read from /status at scrape time.
var (
	descPeerSent = prometheus.NewDesc("mwgc_agent_unicast_adverts_sent_total",
		"Advert copies written to each peer of a unicast group.", []string{"group", "peer"}, nil)
	descPeerSendErrors = prometheus.NewDesc("mwgc_agent_unicast_send_errors_total",
		"Advert copies to a peer of a unicast group that the kernel refused (no route, neighbour unreachable, link down).", []string{"group", "peer"}, nil)
	descPeerReceived = prometheus.NewDesc("mwgc_agent_unicast_adverts_received_total",
		"Adverts accepted from each peer of a unicast group.", []string{"group", "peer"}, nil)
	descPeerLast = prometheus.NewDesc("mwgc_agent_unicast_last_advert_timestamp_seconds",
		"When the last accepted advert from each peer of a unicast group arrived (Unix time; absent before the first).", []string{"group", "peer"}, nil)
	descPeerDrops = prometheus.NewDesc("mwgc_agent_unicast_drops_total",
		"Adverts from a peer's address that a unicast group dropped, by reason (ttl: below the plan's minimum; destination: not addressed to this node; auth-*: forgeries in its name).",
		[]string{"group", "peer", "reason"}, nil)
)

// unicastCollector exports the per-peer metrics of unicast groups.
type unicastCollector struct{ groups func() []node.GroupStatus }

func (c unicastCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPeerSent, descPeerSendErrors, descPeerReceived, descPeerLast, descPeerDrops} {
		ch <- d
	}
}

func (c unicastCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, g := range c.groups() {
		for _, p := range g.Unicast.Peers {
			counter(descPeerSent, p.AdvertsSent, g.Name, p.Name)
			counter(descPeerSendErrors, p.SendErrors, g.Name, p.Name)
			counter(descPeerReceived, p.AdvertsReceived, g.Name, p.Name)
			if !p.LastAdvert.IsZero() {
				ch <- prometheus.MustNewConstMetric(descPeerLast, prometheus.GaugeValue, float64(p.LastAdvert.UnixNano())/1e9, g.Name, p.Name)
			}
			// Every reason, zeros included, so rate() and alerts see the series from the start.
			for _, r := range vrrp.DropReasons() {
				counter(descPeerDrops, p.Drops[r.String()], g.Name, p.Name, r.String())
			}
		}
	}
}
