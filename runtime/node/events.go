package node

import (
	"io/fs"
	"net"
	"net/netip"
	"time"

	"github.com/mwgc/mwgc/runtime/mgmt/wire"
)

// Event is an input to Node.Step. Every event comes with the time it
// happened (Step's now), from the executor's clock.
type Event interface{ isEvent() }

// PlanFile: the executor read the plan file. Data is its content, or Err
// says why it could not be read. Forced is set for SIGHUP and for the
// first plan: content refused before is tried again, and an unchanged
// plan is reported as such.
type PlanFile struct {
	Data   []byte
	Err    error
	Forced bool
}

// Prepared answers a Prepare effect: one Result per step carried out, in
// order; the executor stops after the first step that failed.
type Prepared struct {
	Txn     uint64
	Results []Result
}

// Result is the outcome of one setup step.
type Result struct {
	Step Effect
	Err  error
	// File is what a ReadFile step read.
	File File
}

// File is a file's content as read by the executor (at most 64 KiB).
type File struct {
	Data []byte
	Mode fs.FileMode // with the type bits: a key must be a regular file
}

// FileRead answers a ReadFile effect outside a Prepare (the periodic
// re-read of key files).
type FileRead struct {
	Path string
	File File
	Err  error
}

// LinkReport is the link watcher's news: a full listing of the host's
// interfaces (Full; an interface it does not name does not exist) or
// changes.
type LinkReport struct {
	Full  bool
	Links []LinkState
}

// LinkState is one interface's link state as the kernel reports it.
type LinkState struct {
	Index int
	Name  string
	// Up: administratively up, carrier present and operationally up (or
	// unknown, as virtual devices without a carrier notion report).
	Up bool
	// Gone: the interface was deleted.
	Gone bool
	// MAC is the interface's hardware address. The node does not use it;
	// the executor follows it with what it sends from that address.
	MAC string
}

// VRRPPacket is one VRRP message read from a socket the node opened.
type VRRPPacket struct {
	Socket   Socket
	Src, Dst netip.Addr
	TTL      int
	Data     []byte
}

// MgmtPacket is one management datagram read from the management socket.
type MgmtPacket struct {
	Socket MgmtSocket
	Src    netip.Addr
	Data   []byte
}

// Load is the host's load answering a ReadLoad effect, per mille of its
// capacity.
type Load struct{ PerMille uint16 }

// ReportChecked answers CheckReport.
type ReportChecked struct{ Report wire.Report }

// Failed reports a host effect that did not work (only those the node
// tracks: AddVIP). Effects that fail without a report are logged and
// counted by the executor.
type Failed struct {
	Effect Effect
	Err    error
}

// Tick: Deadline has come.
type Tick struct{}

// Stop hands over and closes everything; the node takes no event after it.
type Stop struct{}

func (PlanFile) isEvent()          {}
func (Neighbors) isEvent()         {}
func (ForwardingApplied) isEvent() {}
func (Prepared) isEvent()          {}
func (FileRead) isEvent()          {}
func (LinkReport) isEvent()        {}
func (VRRPPacket) isEvent()        {}
func (MgmtPacket) isEvent()        {}
func (Load) isEvent()              {}
func (ReportChecked) isEvent()     {}
func (Failed) isEvent()            {}
func (Tick) isEvent()              {}
func (Stop) isEvent()              {}

// Neighbors answers ReadNeighbors: the interface's IPv4 neighbours that
// have a link-layer address, or the error.
type Neighbors struct {
	Interface string
	MACs      map[netip.Addr]net.HardwareAddr
	Err       error
}

// ForwardingApplied answers Forwarding: when the transaction committed
// and how long it took, or why it failed (the kernel keeps the previous
// state).
type ForwardingApplied struct {
	At   time.Time
	Took time.Duration
	Err  error
}
