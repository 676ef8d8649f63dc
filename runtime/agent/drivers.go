package agent

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/plan"
)

// Network is everything the agent does to the host's networking. The Linux
// implementation (LinuxNetwork) wraps runtime/vrrpnet, runtime/vip and
// runtime/announce; tests inject a fake, so the agent's wiring, reload and
// shutdown logic run without root.
type Network interface {
	// Listen opens a VRRP socket on ifname for one family, sending from source.
	Listen(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error)
	AddVIP(ifname string, p netip.Prefix) error
	// RemoveVIP must treat an absent address as success.
	RemoveVIP(ifname string, p netip.Prefix) error
	EnsureLinkLocal(ifname string, a netip.Addr) error
	OpenAnnouncer(ifname string) (Announcer, error)
	// WatchLinks reports the host's link states to report: a full listing
	// before it returns, then every change, and a full listing again
	// whenever it had to resubscribe, until ctx ends. An error means the
	// first listing failed; the watcher keeps trying and says so to warn.
	WatchLinks(ctx context.Context, report LinkReport, warn func(error)) error
}

// PacketConn is one raw VRRP socket (see runtime/vrrpnet.Conn).
type PacketConn interface {
	ReadPacket(buf []byte) (n int, src, dst netip.Addr, ttl int, err error)
	WritePacket(msg []byte) error
	Close() error
}

// Announcer sends one gratuitous ARP or unsolicited neighbour advertisement
// per call (see runtime/announce.Announcer).
type Announcer interface {
	Announce(vip netip.Addr) error
	Close() error
}

// Management is the part of runtime/mgmt.Service the agent drives.
type Management interface {
	SetActive(active bool)
	Update(p *plan.Plan) error
	Status() any
	Close() error
}

// StartManagement starts the management protocol for a plan that has a
// management section (see runtime/mgmt.Start).
type StartManagement func(p *plan.Plan, log *slog.Logger, reg prometheus.Registerer) (Management, error)
