// Package forward programs traffic distribution into the kernel with
// nftables (docs/distribution.md): on the Active director, the table that
// sends each client to its node by the hash of its address; on a node that
// takes a share, the rule that accepts the VIP traffic forwarded to it.
//
// It owns two tables, both named "mwgc-distrib": one of family netdev (the
// director's layer-2 forwarding, an ingress hook on the VIP interface) and
// one of family ip (the node's redirect to the proxy port, and the
// director's DNAT in nat mode). Every change replaces the tables that
// exist in one netlink transaction — readers of the ruleset see the old
// tables or the new, never a mix — and nothing else in the ruleset is
// touched. Clean removes both (at start, after a crash; at stop).
//
// The package takes desired state and returns errors; it keeps no policy.
// It is shaped to move into runtime/nft once that package owns mwgc's
// tables.
package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"

	"github.com/google/nftables"
)

// TableName is the name of both tables this package owns.
const TableName = "mwgc-distrib"

// Director is the Active director's forwarding.
type Director struct {
	// L2 forwards frames (true); otherwise nat.
	L2 bool
	// VIPInterface is where the VIP traffic arrives (l2: the ingress hook).
	VIPInterface string
	// OutIfindex is the interface frames leave by (l2), the one toward the
	// nodes; OutInterface its name (nat: masquerade on it).
	OutIfindex   int
	OutInterface string
	// OutMAC is the outgoing interface's MAC (l2): forwarded frames carry
	// it as their source, as a router's would, so that switches do not
	// learn the client's MAC on the director's port.
	OutMAC    net.HardwareAddr
	VIPs      []netip.Addr
	Ports     []uint16
	ProxyPort uint16
	Seed      uint32
	// Slots: one target per slot, len = table size. A zero Target is this
	// director itself: l2 lets the frame up its own stack, nat maps it to
	// Self.
	Slots []Target
	// Self is this director's address on the node segment (nat target of
	// its own slots).
	Self netip.Addr
	// Hold drops the distributed traffic instead of forwarding it: a new
	// Active waits for the nodes' answers before it maps anyone.
	Hold bool
}

// Target is where one slot's clients go: a node's MAC (l2) or address
// (nat); zero for the director itself.
type Target struct {
	MAC  net.HardwareAddr
	Addr netip.Addr
}

// Node is what a node taking a share needs: VIP traffic to the ports is
// redirected to the local proxy port (l2; in nat mode traffic arrives
// already addressed to the node).
type Node struct {
	VIPs      []netip.Addr
	Ports     []uint16
	ProxyPort uint16
}

// State is everything this package programs on one host.
type State struct {
	Director *Director // nil: not the Active director
	Node     *Node     // nil: no redirect
}

// Driver owns the tables in one network namespace.
type Driver struct {
	opts    []nftables.ConnOption
	applied *State
}

// New returns a driver; opts select the namespace (default: the caller's).
func New(opts ...nftables.ConnOption) *Driver {
	return &Driver{opts: opts}
}

func (d *Driver) conn() (*nftables.Conn, error) {
	c, err := nftables.New(d.opts...)
	if err != nil {
		return nil, fmt.Errorf("forward: nftables: %w", err)
	}
	return c, nil
}

// Apply makes the kernel hold exactly s, in one transaction. On error the
// kernel keeps what it had (the transaction is all or nothing) and the
// driver remembers nothing new.
func (d *Driver) Apply(s State) error {
	if err := s.validate(); err != nil {
		return err
	}
	if d.applied != nil && sameShape(d.applied, &s) {
		// Only slots moved (a node came or went): change just those map
		// elements, leaving hooks and rules in place. Registering a hook
		// waits for an RCU grace period; this does not. Any failure
		// (someone changed our table) falls back to a full rebuild.
		if err := d.applySlots(d.applied.Director, s.Director); err == nil {
			d.applied = s.clone()
			return nil
		}
	}
	c, err := d.conn()
	if err != nil {
		return err
	}
	netdev := &nftables.Table{Name: TableName, Family: nftables.TableFamilyNetdev}
	ip := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	// Add-then-delete removes a table whether or not it exists, inside the
	// same transaction that builds its replacement.
	for _, t := range []*nftables.Table{netdev, ip} {
		c.AddTable(t)
		c.DelTable(t)
	}
	if s.Director != nil && s.Director.L2 {
		if err := buildL2(c, netdev, s.Director); err != nil {
			return err
		}
	}
	if s.Node != nil || (s.Director != nil && !s.Director.L2) {
		if err := buildIP(c, ip, s); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("forward: nftables transaction: %w", err)
	}
	d.applied = s.clone()
	return nil
}

// clone copies s deeply: the caller may change what it passed.
func (s State) clone() *State {
	out := State{}
	if s.Director != nil {
		dir := *s.Director
		dir.VIPs, dir.Ports = slices.Clone(dir.VIPs), slices.Clone(dir.Ports)
		dir.OutMAC = slices.Clone(dir.OutMAC)
		dir.Slots = make([]Target, len(s.Director.Slots))
		for i, t := range s.Director.Slots {
			dir.Slots[i] = Target{MAC: slices.Clone(t.MAC), Addr: t.Addr}
		}
		out.Director = &dir
	}
	if s.Node != nil {
		n := *s.Node
		n.VIPs, n.Ports = slices.Clone(n.VIPs), slices.Clone(n.Ports)
		out.Node = &n
	}
	return &out
}

// sameShape reports whether b differs from a in the director's slots only.
func sameShape(a, b *State) bool {
	if a.Director == nil || b.Director == nil || !reflect.DeepEqual(a.Node, b.Node) {
		return false
	}
	x, y := *a.Director, *b.Director
	if len(x.Slots) != len(y.Slots) {
		return false
	}
	x.Slots, y.Slots = nil, nil
	return reflect.DeepEqual(x, y)
}

// applySlots changes the elements of the slot map that differ between old
// and new, in one transaction.
func (d *Driver) applySlots(old, new *Director) error {
	c, err := d.conn()
	if err != nil {
		return err
	}
	m := &nftables.Set{Name: "slots", IsMap: true, KeyType: nftables.TypeInteger}
	if new.L2 {
		m.Table, m.DataType = &nftables.Table{Name: TableName, Family: nftables.TableFamilyNetdev}, nftables.TypeEtherAddr
	} else {
		m.Table, m.DataType = &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}, nftables.TypeIPAddr
	}
	var del, add []nftables.SetElement
	for i := range new.Slots {
		ov, nv := slotValue(old, i), slotValue(new, i)
		if string(ov) == string(nv) {
			continue
		}
		if ov != nil {
			del = append(del, nftables.SetElement{Key: slotKey(i)})
		}
		if nv != nil {
			add = append(add, nftables.SetElement{Key: slotKey(i), Val: nv})
		}
	}
	for len(del) > 0 {
		n := min(chunk, len(del))
		if err := c.SetDeleteElements(m, del[:n]); err != nil {
			return err
		}
		del = del[n:]
	}
	for len(add) > 0 {
		n := min(chunk, len(add))
		if err := c.SetAddElements(m, add[:n]); err != nil {
			return err
		}
		add = add[n:]
	}
	return c.Flush()
}

// slotValue is the map value of slot i: the MAC (l2; nil for the
// director's own slots, which are not in the map) or the address (nat).
func slotValue(d *Director, i int) []byte {
	t := d.Slots[i]
	if d.L2 {
		if t.MAC == nil {
			return nil
		}
		return []byte(t.MAC)
	}
	a := d.Self
	if t.Addr.IsValid() {
		a = t.Addr
	}
	a4 := a.As4()
	return a4[:]
}

// Clean removes both tables if they exist (a crashed run's leftovers, or
// at stop), in one transaction.
func (d *Driver) Clean() error {
	d.applied = nil
	return d.Apply(State{})
}

// Applied is a copy of the state last applied successfully (nil before
// the first).
func (d *Driver) Applied() *State {
	if d.applied == nil {
		return nil
	}
	return d.applied.clone()
}

func (s *State) validate() error {
	var errs []error
	if dir := s.Director; dir != nil {
		if len(dir.VIPs) == 0 || len(dir.Ports) == 0 || dir.ProxyPort == 0 || len(dir.Slots) == 0 {
			errs = append(errs, errors.New("director: VIPs, ports, proxy port and slots are required"))
		}
		if dir.L2 && (dir.VIPInterface == "" || dir.OutIfindex <= 0 || len(dir.OutMAC) != 6) {
			errs = append(errs, errors.New("director l2: VIP interface, outgoing interface index and MAC are required"))
		}
		if !dir.L2 && (!dir.Self.Is4() || dir.OutInterface == "") {
			errs = append(errs, errors.New("director nat: own IPv4 address and outgoing interface are required"))
		}
		for i, t := range dir.Slots {
			switch {
			case dir.L2 && t.MAC != nil && len(t.MAC) != 6:
				errs = append(errs, fmt.Errorf("slot %d: MAC %v is not 6 bytes", i, t.MAC))
			case !dir.L2 && t.Addr.IsValid() && !t.Addr.Is4():
				errs = append(errs, fmt.Errorf("slot %d: %v is not IPv4", i, t.Addr))
			}
		}
	}
	if n := s.Node; n != nil && (len(n.VIPs) == 0 || len(n.Ports) == 0 || n.ProxyPort == 0) {
		errs = append(errs, errors.New("node: VIPs, ports and proxy port are required"))
	}
	for _, vips := range [][]netip.Addr{vipsOf(s)} {
		if slices.ContainsFunc(vips, func(a netip.Addr) bool { return !a.Is4() }) {
			errs = append(errs, errors.New("VIPs must be IPv4"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("forward: %w", errors.Join(errs...))
	}
	return nil
}

func vipsOf(s *State) []netip.Addr {
	var out []netip.Addr
	if s.Director != nil {
		out = append(out, s.Director.VIPs...)
	}
	if s.Node != nil {
		out = append(out, s.Node.VIPs...)
	}
	return out
}
