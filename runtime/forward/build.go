package forward

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers: NFT_REG_1 (16 bytes) and NFT_REG_2.
const (
	reg1 = 1
	reg2 = 2
)

// sets adds the VIP and port sets every table matches on.
func sets(c *nftables.Conn, t *nftables.Table, vips []netip.Addr, ports []uint16) (*nftables.Set, *nftables.Set, error) {
	vs := &nftables.Set{Table: t, Name: "vips", KeyType: nftables.TypeIPAddr}
	ps := &nftables.Set{Table: t, Name: "ports", KeyType: nftables.TypeInetService}
	return vs, ps, addSetElems(c, vs, ps, vips, ports)
}

// matchIPv4Service matches IPv4 TCP to a VIP and port of the sets;
// netdev chains first check that the frame carries IPv4.
func matchIPv4Service(netdev bool, vips, ports *nftables.Set) []expr.Any {
	var e []expr.Any
	if netdev {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{0x08, 0x00}},
		)
	}
	return append(e,
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}, // ip daddr
		&expr.Lookup{SourceRegister: reg1, SetName: vips.Name, SetID: vips.ID},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, // th dport
		&expr.Lookup{SourceRegister: reg1, SetName: ports.Name, SetID: ports.ID},
	)
}

// hashSlot loads the client's slot into reg1: jhash ip saddr mod slots.
func hashSlot(seed uint32, slots int) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}, // ip saddr
		&expr.Hash{SourceRegister: reg1, DestRegister: reg1, Length: 4, Modulus: uint32(slots), Seed: seed, Type: expr.HashTypeJenkins},
	}
}

// slotKey is a slot as the hash expression leaves it in a register: a
// 32-bit integer in host byte order.
func slotKey(s int) []byte { return binaryutil.NativeEndian.PutUint32(uint32(s)) }

// buildL2 is the director's layer-2 forwarding:
//
//	table netdev mwgc-distrib {
//	  set vips, set ports
//	  map slots { type integer : ether_addr }   # the director's own slots absent
//	  chain ingress { type filter hook ingress device VIPIF priority 0; policy accept
//	    meta protocol ip ip daddr @vips tcp dport @ports
//	      ether daddr set jhash ip saddr mod N seed S map @slots ether saddr set OUTMAC
//	      dup to OUTIF drop
//	  }
//	}
//
// A slot of the director's own is not in the map: the lookup fails, the
// rule does not match, and the frame goes up the director's own stack,
// where its node rule redirects it to the local proxy. The source MAC
// becomes the director's, as a router's would: with the client's, a
// switch would learn the client on the director's port and send the
// node's replies there. (google/nftables
// v0.3.0 has no fwd expression; dup to the device and drop the original
// is the same path plus one clone of the packet's header.)
func buildL2(c *nftables.Conn, t *nftables.Table, d *Director) error {
	c.AddTable(t)
	vips, ports, err := sets(c, t, d.VIPs, d.Ports)
	if err != nil {
		return err
	}
	slots := &nftables.Set{Table: t, Name: "slots", IsMap: true, KeyType: nftables.TypeInteger,
		DataType: nftables.TypeEtherAddr, KeyByteOrder: binaryutil.NativeEndian}
	var elems []nftables.SetElement
	for s := range d.Slots {
		if v := slotValue(d, s); v != nil {
			elems = append(elems, nftables.SetElement{Key: slotKey(s), Val: v})
		}
	}
	if err := addMap(c, slots, elems); err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "ingress", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityFilter, Device: d.VIPInterface, Policy: &accept})
	e := matchIPv4Service(true, vips, ports)
	if d.Hold {
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	} else {
		e = append(e, hashSlot(d.Seed, len(d.Slots))...)
		e = append(e,
			&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: slots.Name, SetID: slots.ID},
			&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: reg1, Base: expr.PayloadBaseLLHeader, Offset: 0, Len: 6},
			&expr.Immediate{Register: reg1, Data: []byte(d.OutMAC)},
			&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: reg1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Immediate{Register: reg1, Data: binaryutil.NativeEndian.PutUint32(uint32(d.OutIfindex))},
			&expr.Dup{RegAddr: reg1, RegDev: reg1, IsRegDevSet: true},
			&expr.Verdict{Kind: expr.VerdictDrop},
		)
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	return nil
}

// buildIP is the ip-family table: the node's redirect of forwarded VIP
// traffic to the proxy port, and in nat mode the director's DNAT to the
// slot's node and masquerade of those connections toward the nodes.
//
//	chain node { type nat hook prerouting priority dstnat + 1
//	  ip daddr @node-vips tcp dport @node-ports tcp flags & (syn | ack) != syn drop
//	  ip daddr @node-vips tcp dport @node-ports redirect to :PROXY }
//	chain dnat { type nat hook prerouting priority dstnat
//	  ip daddr @vips tcp dport @ports dnat to jhash ip saddr mod N seed S map @slots : PROXY }
//	chain snat { type nat hook postrouting priority srcnat
//	  oifname OUTIF ct original ip daddr @vips masquerade }
func buildIP(c *nftables.Conn, t *nftables.Table, s State) error {
	c.AddTable(t)
	if n := s.Node; n != nil {
		vips := &nftables.Set{Table: t, Name: "node-vips", KeyType: nftables.TypeIPAddr}
		ports := &nftables.Set{Table: t, Name: "node-ports", KeyType: nftables.TypeInetService}
		if err := addSetElems(c, vips, ports, n.VIPs, n.Ports); err != nil {
			return err
		}
		prio := nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest + 1)
		ch := c.AddChain(&nftables.Chain{Name: "node", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: prio})
		// A nat chain sees only the first packet of a connection. If that
		// is not a SYN, the connection lives on another node (this one
		// just became Active and its forwarding is not in place yet, or
		// the mapping moved): drop it, the client retransmits, instead of
		// letting the local stack reset a connection it does not know.
		e := matchIPv4Service(false, vips, ports)
		e = append(e,
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1}, // tcp flags
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{0x02}}, // not a SYN without ACK
			&expr.Verdict{Kind: expr.VerdictDrop},
		)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
		e = matchIPv4Service(false, vips, ports)
		e = append(e,
			&expr.Immediate{Register: reg1, Data: binary.BigEndian.AppendUint16(nil, n.ProxyPort)},
			&expr.Redir{RegisterProtoMin: reg1},
		)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}
	d := s.Director
	if d == nil || d.L2 {
		return nil
	}
	vips, ports, err := sets(c, t, d.VIPs, d.Ports)
	if err != nil {
		return err
	}
	slots := &nftables.Set{Table: t, Name: "slots", IsMap: true, KeyType: nftables.TypeInteger,
		DataType: nftables.TypeIPAddr, KeyByteOrder: binaryutil.NativeEndian}
	var elems []nftables.SetElement
	for s := range d.Slots {
		elems = append(elems, nftables.SetElement{Key: slotKey(s), Val: slotValue(d, s)})
	}
	if err := addMap(c, slots, elems); err != nil {
		return err
	}
	dnat := c.AddChain(&nftables.Chain{Name: "dnat", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	e := matchIPv4Service(false, vips, ports)
	if d.Hold {
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	} else {
		e = append(e, hashSlot(d.Seed, len(d.Slots))...)
		e = append(e,
			&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: slots.Name, SetID: slots.ID},
			&expr.Immediate{Register: reg2, Data: binary.BigEndian.AppendUint16(nil, d.ProxyPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
		)
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: dnat, Exprs: e})
	snat := c.AddChain(&nftables.Chain{Name: "snat", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	c.AddRule(&nftables.Rule{Table: t, Chain: snat, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(d.OutInterface)},
		&expr.Ct{Register: reg1, Key: expr.CtKeyDST, Direction: 0}, // ct original ip daddr
		&expr.Lookup{SourceRegister: reg1, SetName: vips.Name, SetID: vips.ID},
		&expr.Masq{},
	}})
	return nil
}

func addSetElems(c *nftables.Conn, vips, ports *nftables.Set, va []netip.Addr, pa []uint16) error {
	var ve, pe []nftables.SetElement
	for _, v := range va {
		a := v.As4()
		ve = append(ve, nftables.SetElement{Key: a[:]})
	}
	for _, p := range pa {
		pe = append(pe, nftables.SetElement{Key: binary.BigEndian.AppendUint16(nil, p)})
	}
	if err := c.AddSet(vips, ve); err != nil {
		return fmt.Errorf("forward: set %s: %w", vips.Name, err)
	}
	if err := c.AddSet(ports, pe); err != nil {
		return fmt.Errorf("forward: set %s: %w", ports.Name, err)
	}
	return nil
}

// ifname is an interface name as meta oifname compares it: 16 bytes,
// zero-padded.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// chunk bounds the elements of one netlink message: the element list is
// one attribute, whose length field has 16 bits, so a few thousand
// elements in one message would wrap it and the kernel would silently
// load only part of the map. The messages still form one transaction.
const chunk = 512

func addMap(c *nftables.Conn, m *nftables.Set, elems []nftables.SetElement) error {
	if err := c.AddSet(m, nil); err != nil {
		return fmt.Errorf("forward: map %s: %w", m.Name, err)
	}
	for len(elems) > 0 {
		n := min(chunk, len(elems))
		if err := c.SetAddElements(m, elems[:n]); err != nil {
			return fmt.Errorf("forward: map %s: %w", m.Name, err)
		}
		elems = elems[n:]
	}
	return nil
}
