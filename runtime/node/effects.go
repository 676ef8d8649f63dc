package node

import (
	"net/netip"
	"time"

	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/nft"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Effect is an output of Node.Step for the executor to carry out, in
// order. There are three kinds:
//
//   - setup steps, which can fail and whose outcome decides whether a plan
//     is committed: they come inside a Prepare and are answered with
//     Prepared;
//   - host changes, carried out and forgotten (a failure is logged and
//     counted by the executor; AddVIP failures are reported with Failed);
//   - reports, which only feed metrics.
type Effect interface{ isEffect() }

// Socket identifies one raw VRRP socket: the groups of one interface,
// family and advert source share it and are told apart by VRID. A
// SendOnly socket (a group's virtual-MAC macvlan) joins no group and is
// never read: that group receives on its parent's socket.
type Socket struct {
	Interface string
	IPv6      bool
	Source    netip.Addr
	SendOnly  bool
}

// Family is "ipv4" or "ipv6", for labels.
func (s Socket) Family() string {
	if s.IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// MgmtSocket identifies the management protocol's UDP socket.
type MgmtSocket struct {
	Interface string
	Port      int
}

// ---- Setup: inside a Prepare, answered with Prepared.

// Prepare asks for the steps that must all work before a plan is
// committed. The executor carries them out in order, stops at the first
// failure, and answers with Prepared{Txn, Results} before any other event.
type Prepare struct {
	Txn   uint64
	Steps []Effect
}

// OpenVRRP opens a raw VRRP socket (and, later, reports what it reads as
// VRRPPacket events). Also a step: see Prepare.
type OpenVRRP struct{ Socket Socket }

// OpenMgmt opens the management socket (reads become MgmtPacket events).
type OpenMgmt struct{ Socket MgmtSocket }

// EnsureLinkLocal adds the IPv6 link-local advert source to an interface
// when it lacks it. A step in a Prepare, or a host change after a link
// came back up.
type EnsureLinkLocal struct {
	Interface string
	Addr      netip.Addr
}

// Forwarding makes the kernel hold the traffic distribution's state
// (runtime/forward: the Active director's mapping, a node's redirect), in
// one transaction; the zero State removes it. The executor fills in the
// outgoing interface's index and MAC, applies it, and answers
// ForwardingApplied. Emitted when the state changes: a plan committed, the
// node Active or not, the management table, the neighbours, the end of a
// takeover hold, and at stop.
type Forwarding struct{ State forward.State }

// ReadNeighbors asks for the IPv4 neighbour table of an interface; the
// executor answers Neighbors.
type ReadNeighbors struct{ Interface string }

// Rules makes the kernel's nftables ruleset hold State: mwgc's tables
// only, replaced in one transaction (runtime/nft). A setup step whenever a
// plan changes what it asks for (the first plan's also clears a crashed
// run's leftovers); at stop the empty state removes mwgc's tables.
type Rules struct{ State nft.State }

// ReadFile reads a file (a key). In a Prepare its content comes back in
// the Result; outside one, as a FileRead event.
type ReadFile struct{ Path string }

// EnsureVMAC makes Name a macvlan on Parent with the RFC 9568 virtual MAC
// of VRID for the family, down (runtime/vmac.Ensure); an existing one of
// that shape is adopted as it is. A setup step.
type EnsureVMAC struct {
	Group        string
	Name, Parent string
	VRID         int
	IPv6         bool
}

// CheckWritable checks that a file the node will write later (the
// management table file) can be written: its directory exists and the
// agent may create files in it. It writes nothing; a failure fails the
// plan now rather than every table write after it started.
type CheckWritable struct{ Path string }

// ---- Host changes.

// SendAdvert writes a VRRP advert to the group address on Socket, or,
// for a unicast group, to the peer To (one effect per peer).
type SendAdvert struct {
	Socket Socket
	Group  string
	Data   []byte
	// To is the unicast destination; invalid: the VRRP group address.
	To netip.Addr
	// Peer names the plan's peer at To, for metrics.
	Peer string
}

// AddVIP configures a VIP on an interface. A failure is reported with
// Failed, so the node knows the VIP is not held.
type AddVIP struct {
	Group     string
	Interface string
	VIP       netip.Prefix
}

// RemoveVIP removes a VIP; an absent address counts as removed. Also a
// setup step for the first plan (VIPs an earlier run left behind).
type RemoveVIP struct {
	Group     string
	Interface string
	VIP       netip.Prefix
}

// Announce sends one gratuitous ARP (IPv4) or unsolicited neighbour
// advertisement (IPv6) for a VIP of Group, or, with Group empty, for one
// of the node's own addresses (an answer to a claim of it).
type Announce struct {
	Group     string
	Interface string
	VIP       netip.Addr
}

// SetVMAC brings a group's virtual-MAC macvlan up (Active: before the
// group's first advert; an IPv6 group's link-local advert source LinkLocal
// is added on the way up) or down (after its last advert and its VIPs),
// so that only the Active ever speaks from the virtual MAC.
type SetVMAC struct {
	Group     string
	Name      string
	Active    bool
	LinkLocal netip.Addr
}

// RemoveVMAC deletes a group's macvlan (the group left the plan, or the
// node stops).
type RemoveVMAC struct {
	Group string
	Name  string
}

// CloseVRRP closes a VRRP socket.
type CloseVRRP struct{ Socket Socket }

// CloseMgmt closes the management socket.
type CloseMgmt struct{ Socket MgmtSocket }

// MgmtSend sends a management datagram from the management address.
type MgmtSend struct {
	Socket   MgmtSocket
	From, To netip.Addr
	Type     wire.Type
	Data     []byte
}

// WriteTable writes the management table file (atomically, off the loop:
// a later write may replace an earlier one not yet written).
type WriteTable struct {
	Path  string
	Table mgmt.TableFile
}

// RemoveFile removes a file the node wrote (an abandoned table file).
type RemoveFile struct{ Path string }

// ReadLoad asks for the host's load, answered with a Load event.
type ReadLoad struct{}

// CheckReport asks for the distribution report (mgmt.CheckReport: the
// interface's MAC, whether the proxy port accepts a connection). It may
// wait up to Timeout, so the executor runs it off its loop and answers
// with ReportChecked.
type CheckReport struct {
	Target  mgmt.ReportTarget
	Timeout time.Duration
}

// ---- Reports: metrics only.

// Transition reports a group's state change.
type Transition struct {
	Group    string
	From, To vrrp.State
}

// Dropped reports an advert a group's engine dropped.
type Dropped struct {
	Group  string
	Reason string
}

// Received reports an advert delivered to a group's engine.
type Received struct{ Group string }

// Reannounced reports a re-announcement burst of a group: Reason is the
// engine's (vrrp.AnnounceReason: lower-priority, pause, refresh).
type Reannounced struct {
	Group  string
	Reason string
}

// UnknownVRID reports a packet for a VRID the node does not run.
type UnknownVRID struct{ Socket Socket }

// GroupState reports the state a group shows (StateFault while the node
// is in Fault); Removed when the group left the plan.
type GroupState struct {
	Group   string
	State   string
	Removed bool
}

// ActiveChanged reports whether the node is Active (its sync group).
type ActiveChanged struct{ Active bool }

// FaultChanged reports the node entering or leaving Fault.
type FaultChanged struct{ Fault bool }

// InterfacesChanged reports the link state of every interface the groups
// run on (the whole set: interfaces not listed are no longer watched).
type InterfacesChanged struct{ Up map[string]bool }

// PlanResult reports what became of a plan file: ResultOK, ResultUnchanged,
// ResultRefused (it does not decode or validate) or ResultFailed (it could
// not be set up). Initial is set for the first plan: then a failure means
// the node cannot start. Cluster, Node and Digest name the running plan.
type PlanResult struct {
	Result  string
	Err     error
	Initial bool
	Cluster string
	Node    string
	Digest  string
}

// Plan results.
const (
	ResultOK        = "ok"
	ResultUnchanged = "unchanged"
	ResultRefused   = "refused"
	ResultFailed    = "failed"
)

// StateFault is the state reported for the node and every group while an
// interface of the groups is down.
const StateFault = "Fault"

func (Prepare) isEffect()           {}
func (OpenVRRP) isEffect()          {}
func (OpenMgmt) isEffect()          {}
func (EnsureLinkLocal) isEffect()   {}
func (ReadFile) isEffect()          {}
func (EnsureVMAC) isEffect()        {}
func (SetVMAC) isEffect()           {}
func (RemoveVMAC) isEffect()        {}
func (CheckWritable) isEffect()     {}
func (Rules) isEffect()             {}
func (Forwarding) isEffect()        {}
func (ReadNeighbors) isEffect()     {}
func (SendAdvert) isEffect()        {}
func (AddVIP) isEffect()            {}
func (RemoveVIP) isEffect()         {}
func (Announce) isEffect()          {}
func (CloseVRRP) isEffect()         {}
func (CloseMgmt) isEffect()         {}
func (MgmtSend) isEffect()          {}
func (WriteTable) isEffect()        {}
func (RemoveFile) isEffect()        {}
func (ReadLoad) isEffect()          {}
func (CheckReport) isEffect()       {}
func (Transition) isEffect()        {}
func (Dropped) isEffect()           {}
func (Received) isEffect()          {}
func (Reannounced) isEffect()       {}
func (UnknownVRID) isEffect()       {}
func (GroupState) isEffect()        {}
func (ActiveChanged) isEffect()     {}
func (FaultChanged) isEffect()      {}
func (InterfacesChanged) isEffect() {}
func (PlanResult) isEffect()        {}
