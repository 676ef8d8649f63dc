// Package vrrp is a pure VRRPv3 engine (RFC 9568): the wire format and the
// router state machine. It holds no goroutines, sockets or wall clock: the
// caller feeds events with the current time and carries out the returned
// actions, like etcd's raft.
package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// ChecksumForm says which bytes the VRRP checksum covers.
type ChecksumForm uint8

const (
	// ChecksumRFC9568 covers the VRRP message only (IPv4, RFC 9568 §5.2.8).
	ChecksumRFC9568 ChecksumForm = iota + 1
	// ChecksumPseudoHeader adds the IPv4 pseudo-header (keepalived and FRR defaults).
	ChecksumPseudoHeader
	// ChecksumIPv6 adds the IPv6 pseudo-header; the only form for IPv6.
	ChecksumIPv6
)

func (f ChecksumForm) String() string {
	switch f {
	case ChecksumRFC9568:
		return "rfc9568"
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumIPv6:
		return "ipv6"
	}
	return fmt.Sprintf("ChecksumForm(%d)", uint8(f))
}

// Advert is one VRRP advertisement as carried on the wire.
type Advert struct {
	Version, Type, VRID, Priority uint8
	// MaxAdvertInterval is in centiseconds; only the low 12 bits go on the wire.
	MaxAdvertInterval uint16
	// Checksum is the value found by Parse or written by Marshal.
	Checksum  uint16
	Addresses []netip.Addr
}

// ErrVersion2 is wrapped by the *ParseError returned for VRRPv2 packets.
var ErrVersion2 = errors.New("VRRPv2 advertisement (only VRRPv3 is spoken)")

// ParseError says why a message was rejected; Reason is its metric label.
type ParseError struct {
	Reason DropReason
	Msg    string
	Err    error // wrapped cause, e.g. ErrVersion2; may be nil
}

func (e *ParseError) Error() string {
	if e.Err != nil {
		return "vrrp: " + e.Reason.String() + ": " + e.Msg + ": " + e.Err.Error()
	}
	return "vrrp: " + e.Reason.String() + ": " + e.Msg
}

func (e *ParseError) Unwrap() error { return e.Err }

// State is a router's RFC 9568 state.
type State uint8

const (
	StateInitialize State = iota
	StateBackup
	StateActive
)

func (s State) String() string {
	switch s {
	case StateInitialize:
		return "Initialize"
	case StateBackup:
		return "Backup"
	case StateActive:
		return "Active"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// DropReason says why a received message was discarded. Its String is a
// stable metric label.
type DropReason uint8

const (
	DropNone           DropReason = iota
	DropTTL                       // "ttl": TTL / hop limit not 255
	DropVersion                   // "version": not VRRPv3 (v2 wraps ErrVersion2)
	DropType                      // "type": not an ADVERTISEMENT
	DropLength                    // "length": truncated or trailing bytes
	DropChecksum                  // "checksum": matches no accepted form
	DropVRID                      // "vrid": another virtual router
	DropAddressCount              // "address-count": zero addresses
	DropInterval                  // "interval": Max Advert Interval 0 (erratum)
	DropUnknownSource             // "unknown-source": sender is not a configured peer
	DropOwnSource                 // "own-source": sender is our own Source (a loop or a clone)
	DropFamily                    // "family": address family does not match the router
	DropNotRunning                // "not-running": received in Initialize
	DropAuthMissing               // "auth-missing": no trailer, and the mode requires one
	DropAuthMalformed             // "auth-malformed": unknown scheme or reserved bits set
	DropAuthStale                 // "auth-stale": timestamp outside the freshness window
	DropAuthUnknownKey            // "auth-unknown-key": a key id this router does not have
	DropAuthBadMAC                // "auth-bad-mac": the HMAC does not match
	DropAuthReplay                // "auth-replay": not newer than the sender's last advert
	DropNotOwner                  // "not-owner": priority 255 from a peer the plan does not make the owner
	DropLeaveHeld                 // "leave-held": priority 0 from a peer that recently said so and kept advertising
	DropDestination               // "destination": a unicast router's advert addressed to neither its source nor the group
	NumDropReasons                // number of reasons, for arrays indexed by DropReason
)

var dropReasonNames = [NumDropReasons]string{
	DropNone:           "none",
	DropTTL:            "ttl",
	DropVersion:        "version",
	DropType:           "type",
	DropLength:         "length",
	DropChecksum:       "checksum",
	DropVRID:           "vrid",
	DropAddressCount:   "address-count",
	DropInterval:       "interval",
	DropUnknownSource:  "unknown-source",
	DropOwnSource:      "own-source",
	DropFamily:         "family",
	DropNotRunning:     "not-running",
	DropAuthMissing:    "auth-missing",
	DropAuthMalformed:  "auth-malformed",
	DropAuthStale:      "auth-stale",
	DropAuthUnknownKey: "auth-unknown-key",
	DropAuthBadMAC:     "auth-bad-mac",
	DropAuthReplay:     "auth-replay",
	DropNotOwner:       "not-owner",
	DropLeaveHeld:      "leave-held",
	DropDestination:    "destination",
}

// IsAuthFailure reports whether d is one of the authentication reasons: an
// advert in a listed peer's name that did not prove it came from a key holder.
func (d DropReason) IsAuthFailure() bool { return d >= DropAuthMissing && d <= DropAuthReplay }

func (d DropReason) String() string {
	if d < NumDropReasons {
		return dropReasonNames[d]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(d))
}

// DropReasons lists every real reason (without DropNone), for metric setup.
func DropReasons() []DropReason {
	out := make([]DropReason, 0, NumDropReasons-1)
	for d := DropNone + 1; d < NumDropReasons; d++ {
		out = append(out, d)
	}
	return out
}

// Config is one virtual router on one interface for one family.
type Config struct {
	// Name labels the router in the reasons of its sync group's
	// transitions ("group inside (VRID 51) became Active"); empty: the
	// member index.
	Name     string
	VRID     uint8
	Priority uint8 // 1..255 (255 = owner)
	// Source is our advert source (IPv4 primary / IPv6 link-local); the
	// family of the router follows from it.
	Source         netip.Addr
	AdvertInterval time.Duration // whole centiseconds, 10ms..40.95s
	Preempt        bool
	PreemptDelay   time.Duration
	AcceptMode     bool
	VIPs           []netip.Prefix
	// Peers are the legitimate advertisers besides us; adverts from anyone
	// else are dropped ("unknown-source").
	Peers    []netip.Addr
	Checksum ChecksumForm // sending form for IPv4; ignored for IPv6
	// Reannounce: when an Active announces its VIPs again (zero value: on,
	// with the defaults); see Reannounce.
	Reannounce Reannounce

	// Auth, when set, signs our adverts and verifies the peers' with
	// keepalived's auth_hmac trailer (see runtime/vrrp/auth). Keys, mode
	// and window change by Reconfigure without a transition.
	Auth *auth.Config
	// Policy is the plan as election policy: what each listed peer may
	// advertise. Empty means none (adverts count as they come, RFC 9568).
	// See policy.go and docs/security.md.
	Policy []PeerPolicy
	// PolicyGrace is how long a raised own priority or a lengthened own
	// interval waits before it is used, and (twice as long) how long a
	// peer's previously planned values stay allowed after a Reconfigure,
	// so that a roll-out reaching the directors within PolicyGrace of each
	// other never flaps. Zero applies changes at once.
	PolicyGrace time.Duration

	// Unicast: adverts go to every peer by unicast instead of to the group
	// (keepalived's unicast_peer), for networks without multicast. The
	// router still encodes one advert; the caller sends a copy to each of
	// Peers, readdressed with AppendReaddressed. Received adverts must be
	// addressed to Source (TTL at least MinTTL) or to the group (TTL 255);
	// an IPv6 Source may then be a global address. See unicast.go.
	Unicast bool
	// MinTTL is the lowest TTL / hop limit accepted on a unicast advert
	// addressed to Source; 0 means RequiredTTL (255). Below 255 only when
	// peers are behind routers, where authentication must do what the TTL
	// check did.
	MinTTL uint8
}

// PeerPolicy is what the plan lets one peer advertise.
type PeerPolicy struct {
	Addr netip.Addr
	// Priority is the peer's planned priority (255: the owner); an advert
	// with another priority is counted; a higher one counts as this one,
	// 255 from a non-owner is dropped. Zero: no check.
	Priority uint8
	// Interval is the peer's planned advert interval; zero means the
	// group's AdvertInterval. A Backup times the peer out on it, whatever
	// the advert says.
	Interval time.Duration
}

// Disagreement says how an accepted advert differed from the plan; its
// String is a stable label.
type Disagreement uint8

const (
	DisagreePriority Disagreement = iota // "priority": not the planned priority
	DisagreeOwner                        // "owner": priority 255 from a peer that is not the owner
	DisagreeInterval                     // "interval": not the planned interval
	DisagreeLeave                        // "leave": said priority 0, then kept advertising
	NumDisagreements
)

var disagreementNames = [NumDisagreements]string{"priority", "owner", "interval", "leave"}

func (d Disagreement) String() string {
	if d < NumDisagreements {
		return disagreementNames[d]
	}
	return fmt.Sprintf("Disagreement(%d)", uint8(d))
}

// PeerStats is what one listed peer advertised and how it matched the plan.
type PeerStats struct {
	Addr            netip.Addr
	PlannedPriority uint8
	PlannedInterval time.Duration
	// LastPriority and LastInterval are what its last accepted advert said.
	LastPriority uint8
	LastInterval time.Duration
	LastSeen     time.Time
	Accepted     uint64
	// Signed adverts verified; Unsigned ones accepted without a trailer
	// (permissive or receive-only mode); LastKeyID signed the last one.
	Signed, Unsigned uint64
	LastKeyID        uint8
	// AuthFailures counts adverts in its name that failed authentication.
	AuthFailures    uint64
	LastAuthFailure time.Time
	Disagreements   [NumDisagreements]uint64
	// LeaveHeldUntil: until then its priority-0 adverts are ignored.
	LeaveHeldUntil time.Time
	// Drops counts messages from its address that were dropped, per
	// reason (index DropReason): a misrouted peer (ttl, destination) or
	// forgeries in its name (the auth reasons).
	Drops [NumDropReasons]uint64
}

// AuthStats describes the authentication in force.
type AuthStats struct {
	Enabled   bool
	Mode      auth.Mode
	ActiveKey uint8
	KeyIDs    []uint8
	Window    time.Duration
	// Signed adverts sent, Verified adverts received, Unsigned adverts
	// accepted without a trailer.
	Signed, Verified, Unsigned uint64
}

// Stats are counters and the current view of one router.
type Stats struct {
	State           State
	Priority        uint8
	AcceptMode      bool
	AdvertsSent     uint64
	AdvertsReceived uint64 // accepted (not dropped) adverts
	Transitions     uint64
	// Drops counts discarded messages per reason (index DropReason).
	Drops [NumDropReasons]uint64
	// ActiveAdverInterval is the interval in use for Active_Down_Interval:
	// ours, or the one learned from the Active's adverts.
	ActiveAdverInterval time.Duration
	// ActiveAddr is the source of the last accepted advert while Backup,
	// or our own Source while Active; invalid when unknown.
	ActiveAddr netip.Addr
	// AddressMismatches counts accepted adverts whose address list differs
	// from our VIPs (RFC 9568 §7.1: reported, not dropped).
	AddressMismatches uint64
	// ChecksumForms counts accepted adverts per checksum form (index ChecksumForm).
	ChecksumForms [ChecksumIPv6 + 1]uint64
	// Announcements counts Announce actions per reason (index AnnounceReason).
	Announcements [NumAnnounceReasons]uint64
	// ReannouncementsHeldOff counts causes for a re-announcement that came
	// inside the holdoff (served once when it ends).
	ReannouncementsHeldOff uint64
	// Peers lists the configured peers in order.
	Peers []PeerStats
	Auth  AuthStats
	// PendingPriority / PendingInterval are planned own values that wait
	// for PendingAt (a raise or lengthening held for PolicyGrace); zero
	// when none waits.
	PendingPriority uint8
	PendingInterval time.Duration
	PendingAt       time.Time
}

// Event is an input to Router.Step and SyncGroup.Step.
type Event interface{ isEvent() }

// Start moves Initialize -> Backup (or Active at once for the owner, priority 255).
type Start struct{}

// Shutdown: if Active, send a priority-0 advert and remove the VIPs; -> Initialize.
type Shutdown struct{}

// Tick fires every timer due at now.
type Tick struct{}

// Packet is one received VRRP message (the IP payload).
type Packet struct {
	Src, Dst netip.Addr
	TTL      int // IPv4 TTL or IPv6 hop limit as received
	Data     []byte
}

// Reconfigure changes the configuration in place. The state is kept; a VIP
// change while Active yields RemoveVIPs / AddVIPs / Announce for the
// difference; a priority change is used from the next advert. VRID and
// family must not change.
type Reconfigure struct{ Config Config }

func (Start) isEvent()       {}
func (Shutdown) isEvent()    {}
func (Tick) isEvent()        {}
func (Packet) isEvent()      {}
func (Reconfigure) isEvent() {}

// Action is an output of Router.Step for the caller to carry out in order.
type Action interface{ isAction() }

// SendAdvert asks to send Data to 224.0.0.18 / ff02::12 from Config.Source.
type SendAdvert struct {
	Data     []byte
	Priority uint8
}

// AddVIPs asks to configure the addresses on the interface.
type AddVIPs struct{ VIPs []netip.Prefix }

// RemoveVIPs asks to remove the addresses from the interface.
type RemoveVIPs struct{ VIPs []netip.Prefix }

// Announce asks to start a gratuitous ARP / unsolicited NA burst. Reason
// says why: a takeover (the zero value) or a re-announcement, which the
// caller may send as a shorter burst.
type Announce struct {
	VIPs   []netip.Prefix
	Reason AnnounceReason
}

// Transition reports a state change.
type Transition struct {
	From, To State
	Reason   string
}

// Dropped reports a discarded message; it is also counted in Stats.
type Dropped struct {
	Reason DropReason
	Src    netip.Addr
	Err    error
}

// Disagreed reports an accepted (or "not-owner"-dropped) advert that
// disagrees with the plan's policy; it is also counted in Stats.Peers.
type Disagreed struct {
	Peer   netip.Addr
	Reason Disagreement
	Err    error
}

func (Disagreed) isAction()  {}
func (SendAdvert) isAction() {}
func (AddVIPs) isAction()    {}
func (RemoveVIPs) isAction() {}
func (Announce) isAction()   {}
func (Transition) isAction() {}
func (Dropped) isAction()    {}
