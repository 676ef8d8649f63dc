// Package nft owns mwgc's nftables tables, in the manner of kube-proxy's
// nftables mode: the desired state in (State), one netlink transaction out
// that deletes every table mwgc owns and builds them again, so the kernel
// holds the old ruleset or the new one, never a mix. Tables of anyone else
// are never touched; ours are removed on stop (Clean) and a crashed run's
// leftovers at start.
//
// Today's content is the accept-mode filter (RFC 9568 §6.4.3): an Active
// that does not own its VIPs and runs without Accept_Mode must not accept
// packets addressed to them. More parts (traffic distribution) add a field
// to State, their tables to owned, and a build function to Apply.
package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the table of the accept-mode filter. Every table named
// "mwgc" or "mwgc-..." in any family is mwgc's.
const TableName = "mwgc"

// State is everything mwgc wants in the kernel's ruleset.
type State struct {
	// DropVIPs are addresses whose packets the node must not accept: the
	// VIPs of groups that neither own them (priority 255) nor run with
	// Accept_Mode. While the group is Backup the VIPs are not local
	// addresses and the filter sees nothing; while Active it drops them at
	// input, except IPv6 neighbour solicitations and advertisements, which
	// the Active must still answer (RFC 9568 §6.4.3).
	DropVIPs []netip.Addr
}

// IsZero reports whether s needs no table at all.
func (s State) IsZero() bool { return len(s.DropVIPs) == 0 }

// Equal reports whether two states build the same ruleset.
func (s State) Equal(o State) bool {
	return slices.Equal(sortedAddrs(s.DropVIPs), sortedAddrs(o.DropVIPs))
}

func sortedAddrs(a []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// owned lists the tables Apply builds; every one is deleted first.
var owned = []*nftables.Table{
	{Name: TableName, Family: nftables.TableFamilyINet},
}

// Tables applies States in one network namespace.
type Tables struct {
	opts []nftables.ConnOption
}

// New returns Tables for the caller's namespace (or opts').
func New(opts ...nftables.ConnOption) *Tables { return &Tables{opts: opts} }

// Apply makes the kernel hold exactly s, in one transaction. On error the
// kernel keeps what it had.
func (t *Tables) Apply(s State) error {
	c, err := nftables.New(t.opts...)
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	// Add-then-delete removes a table whether or not it exists, in the
	// same transaction that builds its replacement.
	for _, tb := range owned {
		c.AddTable(tb)
		c.DelTable(tb)
	}
	if err := buildAccept(c, s.DropVIPs); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: transaction: %w", err)
	}
	return nil
}

// Clean removes every table of mwgc's, those Apply builds and any other
// named "mwgc-..." (a crashed run's), in one transaction.
func (t *Tables) Clean() error {
	c, err := nftables.New(t.opts...)
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		return fmt.Errorf("nft: listing tables: %w", err)
	}
	for _, tb := range owned {
		c.AddTable(tb)
		c.DelTable(tb)
	}
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, TableName+"-") && !slices.ContainsFunc(owned, func(o *nftables.Table) bool {
			return o.Name == tb.Name && o.Family == tb.Family
		}) {
			c.DelTable(tb)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: transaction: %w", err)
	}
	return nil
}

// ICMPv6 neighbour discovery messages the Active answers for its VIPs.
const (
	ndNeighborSolicit = 135
	ndNeighborAdvert  = 136
)

// buildAccept adds, when there is anything to drop:
//
//	table inet mwgc {
//		set vips4 { type ipv4_addr; elements = { ... } }
//		set vips6 { type ipv6_addr; elements = { ... } }
//		chain vip-input {
//			type filter hook input priority filter - 1; policy accept;
//			ip daddr @vips4 drop
//			ip6 daddr @vips6 icmpv6 type nd-neighbor-solicit accept
//			ip6 daddr @vips6 icmpv6 type nd-neighbor-advert accept
//			ip6 daddr @vips6 drop
//		}
//	}
func buildAccept(c *nftables.Conn, vips []netip.Addr) error {
	if len(vips) == 0 {
		return nil
	}
	var v4, v6 []nftables.SetElement
	for _, a := range sortedAddrs(vips) {
		switch {
		case a.Is4():
			v4 = append(v4, nftables.SetElement{Key: a.AsSlice()})
		case a.Is6() && !a.Is4In6():
			v6 = append(v6, nftables.SetElement{Key: a.AsSlice()})
		default:
			return fmt.Errorf("nft: %v is not an address to filter", a)
		}
	}
	t := c.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	set4 := &nftables.Set{Table: t, Name: "vips4", KeyType: nftables.TypeIPAddr}
	set6 := &nftables.Set{Table: t, Name: "vips6", KeyType: nftables.TypeIP6Addr}
	for _, s := range []struct {
		set   *nftables.Set
		elems []nftables.SetElement
	}{{set4, v4}, {set6, v6}} {
		if err := c.AddSet(s.set, s.elems); err != nil {
			return fmt.Errorf("nft: set %s: %w", s.set.Name, err)
		}
	}
	prio := nftables.ChainPriority(*nftables.ChainPriorityFilter - 1)
	ch := c.AddChain(&nftables.Chain{Name: "vip-input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &prio, Policy: policyRef(nftables.ChainPolicyAccept)})
	rule := func(exprs ...expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs}) }
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	rule(slices.Concat(daddrIn(unix.NFPROTO_IPV4, set4), []expr.Any{drop})...)
	for _, typ := range []byte{ndNeighborSolicit, ndNeighborAdvert} {
		rule(slices.Concat(daddrIn(unix.NFPROTO_IPV6, set6), icmpv6Type(typ), []expr.Any{accept})...)
	}
	rule(slices.Concat(daddrIn(unix.NFPROTO_IPV6, set6), []expr.Any{drop})...)
	return nil
}

// daddrIn matches packets of one family whose destination is in set.
func daddrIn(family byte, set *nftables.Set) []expr.Any {
	off, n := uint32(16), uint32(4) // IPv4 destination
	if family == unix.NFPROTO_IPV6 {
		off, n = 24, 16
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{family}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

// icmpv6Type matches ICMPv6 messages of one type.
func icmpv6Type(typ byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
	}
}

func policyRef(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }
