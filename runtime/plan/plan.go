// Package plan is the contract between `mwgc compile` and `mwgc-agent`: the
// per-node JSON document that tells one agent everything it runs, and nothing
// it does not.
//
// A plan is input from a file, so Decode is strict (unknown fields, wrong
// types and trailing data are errors) and Validate checks every range and
// cross-reference again, even though the compiler already did: the agent
// must never act on a plan it has not checked itself.
package plan

import (
	"net/netip"
	"time"
)

// APIVersion names the format. A change that an older agent would
// misread gets a new version; the agent refuses versions it does not know.
const APIVersion = "mwgc.dev/plan/v1"

// Proxy modes. VRRP and the management protocol run only in the first two.
const (
	ModeTransparentRouter = "transparent-router"
	ModeHAProxy           = "ha-proxy"
	ModeExplicitProxy     = "explicit-proxy"
)

// IPv4 checksum forms for VRRPv3 adverts (IPv6 always uses its pseudo-header).
const (
	// ChecksumRFC9568 covers the VRRP message only (RFC 9568, Cisco, Juniper).
	ChecksumRFC9568 = "rfc9568"
	// ChecksumPseudoHeader adds the IPv4 pseudo-header (keepalived and FRR defaults).
	ChecksumPseudoHeader = "pseudo-header"
)

// Address families of a VRRP group.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// Plan is everything one node's agent needs.
type Plan struct {
	APIVersion string `json:"apiVersion"`
	// Cluster and Node name the plan; they appear in logs, metrics and
	// management answers.
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Mode    string `json:"mode"`
	// Digest is "sha256:<hex>" over the canonical encoding of the plan with
	// this field empty (see ComputeDigest). The agent recomputes it, so a
	// truncated or hand-edited plan is refused.
	Digest     string      `json:"digest"`
	Interfaces []Interface `json:"interfaces"`
	// VRRP is nil on scanning-only nodes (priority 0) and in explicit proxy mode.
	VRRP *VRRP `json:"vrrp,omitempty"`
	// Management is nil in explicit proxy mode.
	Management *Management `json:"management,omitempty"`
	// Distribution is set when the cluster spreads client traffic over
	// its nodes (docs/distribution.md).
	Distribution *Distribution `json:"distribution,omitempty"`
	// Rollout is the digest compiled for every node of the cluster, carried
	// by directors so the Active can show how far a change has rolled out.
	// It is left out of every digest (ComputeDigest), or each director's
	// digest would depend on the others'.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Interface is one of the node's network interfaces.
type Interface struct {
	// Name is the Linux interface name (at most 15 bytes).
	Name    string `json:"name"`
	Segment string `json:"segment"`
	// Addresses are the node's own addresses on the interface, with the
	// segment's prefix length. The agent never adds or removes them.
	Addresses []netip.Prefix `json:"addresses"`
	// LinkLocal is the IPv6 link-local address the node sends VRRP adverts
	// from on this interface; set when an IPv6 group runs here. The agent
	// adds it if the interface lacks it.
	LinkLocal netip.Addr `json:"linkLocal,omitzero"`
}

// VRRP is the node's part in its cluster's VRRP: all groups of a node move
// together (a sync group), so the node is Active for all or for none.
type VRRP struct {
	// Priority of this node, 1..255; 255 only for the owner of every VIP.
	Priority int `json:"priority"`
	// Announce is the gratuitous ARP / unsolicited NA burst sent at takeover.
	Announce Announce `json:"announce"`
	Groups   []Group  `json:"groups"`
	// RolloutGrace: a raised own priority or a longer own interval is used
	// only this long after the plan lands; peers' previous priorities and
	// intervals stay allowed twice as long (see docs/security.md).
	RolloutGrace Duration `json:"rolloutGrace,omitzero"`
	// Notify names the commands run when a group of this node changes
	// state; nil runs none.
	Notify *Notify `json:"notify,omitempty"`
}

// Notify is keepalived's notify_master / notify_backup / notify_fault: an
// argument list per state a group enters (the first an absolute path; no
// shell), run in the background with a timeout.
type Notify struct {
	Active  []string `json:"active,omitempty"`
	Backup  []string `json:"backup,omitempty"`
	Fault   []string `json:"fault,omitempty"`
	Timeout Duration `json:"timeout"`
}

// Command returns the argument list for a state ("Active", "Backup",
// "Fault"), or nil.
func (n *Notify) Command(state string) []string {
	if n == nil {
		return nil
	}
	switch state {
	case "Active":
		return n.Active
	case "Backup":
		return n.Backup
	case "Fault":
		return n.Fault
	}
	return nil
}

// Authentication modes of a group (keepalived's auth_hmac modes).
const (
	AuthEnforce     = "enforce"
	AuthPermissive  = "permissive"
	AuthReceiveOnly = "receive-only"
)

// Auth is a group's advert authentication: keepalived's auth_hmac trailer.
type Auth struct {
	// Mode is enforce, permissive or receive-only.
	Mode string `json:"mode"`
	// Keys are the key files on this node by key id; all verify.
	Keys []Key `json:"keys"`
	// ActiveKey is the id that signs.
	ActiveKey int `json:"activeKey"`
	// Window is the freshness window (whole seconds, 1s..300s); zero means
	// max(3 × advertInterval, 5s).
	Window Duration `json:"window,omitzero"`
}

// Key names one key file.
type Key struct {
	ID int `json:"id"`
	// File is the absolute path of the key on the node: one key of 32..64
	// bytes as keepalived reads it ("hex:<digits>" or the text itself),
	// readable by its owner only.
	File string `json:"file"`
}

// Announce describes the burst of gratuitous ARPs (IPv4) and unsolicited
// neighbour advertisements (IPv6) sent for every VIP on becoming Active.
type Announce struct {
	// Count of packets per VIP in one burst (1..100).
	Count int `json:"count"`
	// Interval between packets of a burst.
	Interval Duration `json:"interval"`
	// RepeatAfter, when non-zero, sends a second burst this long after the
	// first (keepalived does so after 5 s by default).
	RepeatAfter Duration `json:"repeatAfter"`
	// Reannounce is the burst sent again while Active when another director
	// may have announced the VIPs. Nil (a plan from an older compiler)
	// means DefaultReannounce.
	Reannounce *Reannounce `json:"reannounce,omitempty"`
}

// Reannounce configures re-announcement by the Active (see runtime/vrrp
// Reannounce): after a lower-priority advert, a pause of the agent, and
// periodically when Refresh is set.
type Reannounce struct {
	// Count of packets per VIP in one re-announcement (0..100; 0 turns
	// re-announcement and the yield advert off), Announce.Interval apart.
	Count int `json:"count"`
	// Holdoff is the least time between two re-announcements (100ms..1m).
	Holdoff Duration `json:"holdoff"`
	// Refresh, when non-zero (1s..1h), re-announces periodically while Active.
	Refresh Duration `json:"refresh"`
}

// DefaultReannounce is what an agent does for a plan without a
// reannounce section; the schema has the same defaults.
var DefaultReannounce = Reannounce{Count: 3, Holdoff: Duration(time.Second)}

// Group is one VRRP virtual router.
type Group struct {
	// Name is unique within the cluster; it labels logs and metrics.
	Name string `json:"name"`
	// VRID 1..255, unique per segment across every cluster of the repo.
	VRID int `json:"vrid"`
	// Interface names the entry of Plan.Interfaces the group runs on.
	Interface string `json:"interface"`
	Family    string `json:"family"`
	// Version is the VRRP version; 3 is the only one supported.
	Version int `json:"version"`
	// AdvertInterval 10ms..40.95s in whole centiseconds.
	AdvertInterval Duration `json:"advertInterval"`
	Preempt        bool     `json:"preempt"`
	PreemptDelay   Duration `json:"preemptDelay"`
	AcceptMode     bool     `json:"acceptMode"`
	// Checksum is the IPv4 checksum form the node sends; both forms are
	// accepted on receive. Empty for IPv6 groups.
	Checksum string `json:"checksum,omitempty"`
	// Source is the address this node sends adverts from: its primary IPv4
	// address on the interface, or the interface's link-local for IPv6.
	Source netip.Addr `json:"source"`
	// VIPs of the group, all of Family, with the prefix length they get
	// on the interface.
	VIPs []netip.Prefix `json:"vips"`
	// Peers lists every other legitimate advertiser of this group. Adverts
	// from any source not listed here (or this node's own) are dropped.
	Peers []Peer `json:"peers"`
	// VMACInterface, when set, runs the group with the RFC 9568 virtual MAC
	// (00:00:5e:00:01:VRID IPv4, 00:00:5e:00:02:VRID IPv6) on a macvlan
	// interface of this name on Interface, which the agent creates: adverts
	// are sent, VIPs held and announcements made there; adverts are
	// received on Interface.
	VMACInterface string `json:"vmacInterface,omitempty"`
	// Auth, when set, signs and verifies adverts; nil runs the group
	// without authentication.
	Auth *Auth `json:"auth,omitempty"`
	// Unicast, when set, sends every advert to each peer's address instead
	// of the multicast group (networks without multicast); nil is
	// multicast. Peers are then both the only accepted sources and the
	// destinations, and an IPv6 Source may be a global address.
	Unicast *Unicast `json:"unicast,omitempty"`
}

// Unicast is the unicast transport of a group (keepalived's unicast_peer).
type Unicast struct {
	// MinTTL is the lowest TTL / hop limit accepted on an advert addressed
	// to this node, 1..255: 255 unless the cluster says its peers are
	// behind routers.
	MinTTL int `json:"minTTL"`
}

// Peer is another router allowed to advertise for a group.
type Peer struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	// Priority as planned. It is election policy: 255 counts only from a
	// peer planned with 255, and a higher advertised priority counts as
	// this one (see docs/security.md).
	Priority int `json:"priority"`
	// External peers are not mwgc nodes (e.g. keepalived during a migration).
	External bool `json:"external,omitempty"`
	// Auth says the peer signs and verifies the group's authentication
	// (set for every director when the group has Auth).
	Auth bool `json:"auth,omitempty"`
}

// Management is the node's part in the management protocol. Every node
// answers discovery; a node with VRRP runs discovery while it is Active.
type Management struct {
	// Interface names the entry of Plan.Interfaces on the management segment.
	Interface string `json:"interface"`
	// Address is this node's management IP: the source of its discovery
	// broadcasts and answers.
	Address netip.Addr `json:"address"`
	// Broadcast is the segment's directed broadcast address.
	Broadcast netip.Addr `json:"broadcast"`
	Port      int        `json:"port"`
	// DiscoveryInterval between discovery broadcasts and between answers.
	DiscoveryInterval Duration `json:"discoveryInterval"`
	// DeadAfter is how many intervals without an answer mark a node down.
	DeadAfter int `json:"deadAfter"`
	// KeyFile is the path of the HMAC key on the node. Empty only when
	// Unauthenticated is set explicitly.
	KeyFile         string `json:"keyFile,omitempty"`
	Unauthenticated bool   `json:"unauthenticated,omitempty"`
	// TableFile is where the Active director writes its table of scanning
	// nodes (atomically); empty means no file.
	TableFile string `json:"tableFile,omitempty"`
	// Members lists every node allowed to speak the protocol (this one too).
	Members []Member `json:"members"`
	// Discovery is how the Active director reaches the nodes: "broadcast"
	// (empty) to Broadcast, or "unicast", one datagram to each member, for
	// segments without broadcast. Broadcast may then be unset.
	Discovery string `json:"discovery,omitempty"`
	// Version of the protocol messages this node sends: 0 or 1, or 2 when
	// the cluster distributes traffic (answers then carry the node's MAC
	// and proxy check). Every version is accepted on receive.
	Version int `json:"version,omitempty"`
}

// Discovery modes of the management protocol.
const (
	DiscoveryBroadcast = "broadcast"
	DiscoveryUnicast   = "unicast"
)

// Member is a node that may send discovery or answers.
type Member struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	// Director is true for nodes with a VRRP priority above 0.
	Director bool `json:"director,omitempty"`
}

// Distribution modes.
const (
	DistributionL2  = "l2"
	DistributionNAT = "nat"
)

// Distribution is the node's part in spreading the VIPs' client traffic:
// the Active director maps clients to the available nodes; a node that
// takes a share accepts the traffic forwarded to it.
type Distribution struct {
	Mode string `json:"mode"`
	// VIPs whose traffic is distributed (IPv4), and Ports (TCP) of them.
	VIPs  []netip.Addr `json:"vips"`
	Ports []int        `json:"ports"`
	// ProxyPort is where the proxy listens on every node.
	ProxyPort int `json:"proxyPort"`
	// Interface is this node's interface on the distribution segment: a
	// director forwards from it, a node receives on it and announces its
	// MAC.
	Interface string `json:"interface"`
	// Scans: this node takes a share (it accepts distributed traffic and
	// reports whether its proxy port serves).
	Scans bool `json:"scans,omitempty"`
	// Directors only: where the VIP traffic arrives (the VRRP group's
	// interface), the hash table, and every node that may take a share.
	VIPInterface  string             `json:"vipInterface,omitempty"`
	Slots         int                `json:"slots,omitempty"`
	Seed          uint32             `json:"seed,omitempty"`
	DirectorsScan bool               `json:"directorsScan,omitempty"`
	LoadWeighting bool               `json:"loadWeighting,omitempty"`
	Nodes         []DistributionNode `json:"nodes,omitempty"`
}

// DistributionNode is a node that may take a share, as directors see it.
type DistributionNode struct {
	Name string `json:"name"`
	// Address is the node's IPv4 address on the distribution segment: the
	// DNAT target in nat mode, the neighbour checked in l2 mode.
	Address  netip.Addr `json:"address"`
	Director bool       `json:"director,omitempty"`
}

// Rollout lists what was compiled for each node of the cluster, from the
// same commit as this plan.
type Rollout struct {
	Nodes []NodeDigest `json:"nodes"`
}

// NodeDigest is the digest of the plan compiled for one node.
type NodeDigest struct {
	Node   string `json:"node"`
	Digest string `json:"digest"`
}
