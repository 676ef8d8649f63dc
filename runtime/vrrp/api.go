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
	DropNone          DropReason = iota
	DropTTL                      // "ttl": TTL / hop limit not 255
	DropVersion                  // "version": not VRRPv3 (v2 wraps ErrVersion2)
	DropType                     // "type": not an ADVERTISEMENT
	DropLength                   // "length": truncated or trailing bytes
	DropChecksum                 // "checksum": matches no accepted form
	DropVRID                     // "vrid": another virtual router
	DropAddressCount             // "address-count": zero addresses
	DropInterval                 // "interval": Max Advert Interval 0 (erratum)
	DropUnknownSource            // "unknown-source": sender is not a configured peer
	DropOwnSource                // "own-source": sender is our own Source (a loop or a clone)
	DropFamily                   // "family": address family does not match the router
	DropNotRunning               // "not-running": received in Initialize
	NumDropReasons               // number of reasons, for arrays indexed by DropReason
)

var dropReasonNames = [NumDropReasons]string{
	DropNone:          "none",
	DropTTL:           "ttl",
	DropVersion:       "version",
	DropType:          "type",
	DropLength:        "length",
	DropChecksum:      "checksum",
	DropVRID:          "vrid",
	DropAddressCount:  "address-count",
	DropInterval:      "interval",
	DropUnknownSource: "unknown-source",
	DropOwnSource:     "own-source",
	DropFamily:        "family",
	DropNotRunning:    "not-running",
}

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

func (SendAdvert) isAction() {}
func (AddVIPs) isAction()    {}
func (RemoveVIPs) isAction() {}
func (Announce) isAction()   {}
func (Transition) isAction() {}
func (Dropped) isAction()    {}
