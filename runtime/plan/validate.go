package plan

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Limits shared by the schema, the compiler and the agent.
const (
	MinAdvertInterval = 10 * time.Millisecond
	MaxAdvertInterval = 4095 * 10 * time.Millisecond
	MaxPreemptDelay   = time.Hour
	MinDiscovery      = 100 * time.Millisecond
	MaxDiscovery      = time.Hour
	MaxDeadAfter      = 100
	MaxAnnounceCount  = 100
	MaxIfNameLen      = 15
	// MinReannounceHoldoff bounds how often an Active re-announces.
	MinReannounceHoldoff = 100 * time.Millisecond
	MaxRolloutGrace      = time.Hour
	MinAuthWindow        = time.Second
	MaxAuthWindow        = 300 * time.Second
)

// validIfName reports whether name can be a Linux interface name (the
// schema's #IfName: no slash, blank, or leading dot or dash).
func validIfName(name string) bool {
	if name == "" || name == "." || name == ".." || name[0] == '-' || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.:@-", c)) {
			return false
		}
	}
	return true
}

// Validate checks every range and cross-reference of the plan and reports
// all problems at once.
func (p *Plan) Validate() error {
	var errs *multierror.Error
	bad := func(format string, a ...any) {
		errs = multierror.Append(errs, fmt.Errorf(format, a...))
	}
	if p.APIVersion != APIVersion {
		// Nothing else can be trusted when the version is unknown.
		return fmt.Errorf("plan: apiVersion %q is not supported (this agent reads %q)", p.APIVersion, APIVersion)
	}
	if p.Cluster == "" {
		bad("cluster: must not be empty")
	}
	if p.Node == "" {
		bad("node: must not be empty")
	}
	switch p.Mode {
	case ModeTransparentRouter, ModeHAProxy:
	case ModeExplicitProxy:
		if p.VRRP != nil || p.Management != nil {
			bad("mode %s uses neither VRRP nor the management protocol, but the plan configures them", p.Mode)
		}
	default:
		bad("mode: %q is not one of %s, %s, %s", p.Mode, ModeTransparentRouter, ModeHAProxy, ModeExplicitProxy)
	}
	if want, err := ComputeDigest(p); err != nil {
		bad("digest: %v", err)
	} else if p.Digest != want {
		bad("digest: %q does not match the plan's content (%s): the file was changed after compiling", p.Digest, want)
	}

	ifaces := map[string]*Interface{}
	for i := range p.Interfaces {
		in := &p.Interfaces[i]
		switch {
		case in.Name == "" || len(in.Name) > MaxIfNameLen:
			bad("interfaces[%d].name: %q must be 1..%d bytes", i, in.Name, MaxIfNameLen)
		case ifaces[in.Name] != nil:
			bad("interfaces[%d].name: %q appears twice", i, in.Name)
		}
		ifaces[in.Name] = in
		for j, a := range in.Addresses {
			if !a.IsValid() || a.Addr().IsUnspecified() || a.Addr().IsMulticast() {
				bad("interfaces[%d].addresses[%d]: %v is not a unicast address", i, j, a)
			}
		}
		if in.LinkLocal.IsValid() && !(in.LinkLocal.Is6() && in.LinkLocal.IsLinkLocalUnicast()) {
			bad("interfaces[%d].linkLocal: %v is not an IPv6 link-local address", i, in.LinkLocal)
		}
	}

	if p.VRRP != nil {
		p.VRRP.validate(ifaces, bad)
	}
	if p.Management != nil {
		p.Management.validate(p.Node, ifaces, bad)
		// Members drop discovery from a node not marked as a director, so a
		// director listed without the flag would discover nobody.
		for i, mem := range p.Management.Members {
			if mem.Name == p.Node && p.VRRP != nil && !mem.Director {
				bad("management.members[%d].director: false, but this node runs VRRP", i)
			}
		}
	}
	if p.Distribution != nil {
		p.Distribution.validate(p, ifaces, bad)
	}
	if p.Rollout != nil {
		p.Rollout.validate(p, bad)
	}
	return errs.ErrorOrNil()
}

// validate checks that the roll-out table names each member once, with a
// well-formed digest.
func (r *Rollout) validate(p *Plan, bad func(string, ...any)) {
	members := map[string]bool{}
	if p.Management != nil {
		for _, m := range p.Management.Members {
			members[m.Name] = true
		}
	}
	seen := map[string]bool{}
	for i, n := range r.Nodes {
		switch {
		case !members[n.Node]:
			bad("rollout.nodes[%d].node: %q is not a member of the management protocol", i, n.Node)
		case seen[n.Node]:
			bad("rollout.nodes[%d].node: %q appears twice", i, n.Node)
		}
		seen[n.Node] = true
		if !validDigest(n.Digest) {
			bad("rollout.nodes[%d].digest: %q is not sha256:<64 hex digits>", i, n.Digest)
		}
	}
}

func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Limits of a distribution.
const (
	MinSlots = 64
	MaxSlots = 65536
)

func (d *Distribution) validate(p *Plan, ifaces map[string]*Interface, bad func(string, ...any)) {
	if p.Management == nil {
		bad("distribution: needs the management protocol (it finds the available nodes)")
	} else if p.Management.Version < 2 {
		bad("management.version: %d, but the distribution needs version 2 (answers with MAC and proxy check)", p.Management.Version)
	}
	if d.Mode != DistributionL2 && d.Mode != DistributionNAT {
		bad("distribution.mode: %q is not %s or %s", d.Mode, DistributionL2, DistributionNAT)
	}
	if len(d.VIPs) == 0 {
		bad("distribution.vips: at least one VIP")
	}
	for i, v := range d.VIPs {
		if !v.Is4() || v.IsUnspecified() || v.IsMulticast() {
			bad("distribution.vips[%d]: %v is not a unicast IPv4 address", i, v)
		}
	}
	if len(d.Ports) == 0 {
		bad("distribution.ports: at least one port")
	}
	seen := map[int]bool{}
	for i, port := range append(append([]int(nil), d.Ports...), d.ProxyPort) {
		if port < 1 || port > 65535 {
			bad("distribution port %d: %d is outside 1..65535", i, port)
		}
		if i < len(d.Ports) && seen[port] {
			bad("distribution.ports[%d]: %d appears twice", i, port)
		}
		seen[port] = true
	}
	if ifaces[d.Interface] == nil {
		bad("distribution.interface: %q is not among the plan's interfaces", d.Interface)
	}
	if p.VRRP == nil {
		if d.VIPInterface != "" || len(d.Nodes) > 0 {
			bad("distribution: vipInterface and nodes are for directors; this node runs no VRRP")
		}
		if !d.Scans {
			bad("distribution.scans: a node without VRRP that takes no share has no part in the distribution")
		}
		return
	}
	if ifaces[d.VIPInterface] == nil {
		bad("distribution.vipInterface: %q is not among the plan's interfaces", d.VIPInterface)
	}
	if d.Slots < MinSlots || d.Slots > MaxSlots {
		bad("distribution.slots: %d is outside %d..%d", d.Slots, MinSlots, MaxSlots)
	}
	vips := map[netip.Addr]bool{}
	for _, g := range p.VRRP.Groups {
		for _, v := range g.VIPs {
			if g.Interface == d.VIPInterface {
				vips[v.Addr()] = true
			}
		}
	}
	for i, v := range d.VIPs {
		if !vips[v] {
			bad("distribution.vips[%d]: %v is not a VIP of a group on %s", i, v, d.VIPInterface)
		}
	}
	if len(d.Nodes) == 0 {
		bad("distribution.nodes: no node takes a share")
	}
	names := map[string]bool{}
	for i, n := range d.Nodes {
		if n.Name == "" || names[n.Name] {
			bad("distribution.nodes[%d].name: %q must be non-empty and unique", i, n.Name)
		}
		names[n.Name] = true
		if !n.Address.Is4() {
			bad("distribution.nodes[%d].address: %v is not an IPv4 address", i, n.Address)
		}
		if n.Name == p.Node && !d.Scans {
			bad("distribution.nodes[%d]: this node is listed but scans is false", i)
		}
	}
	if d.Scans && !names[p.Node] {
		bad("distribution.scans: true, but this node is not among distribution.nodes")
	}
}

func (v *VRRP) validate(ifaces map[string]*Interface, bad func(string, ...any)) {
	if v.Priority < 1 || v.Priority > 255 {
		bad("vrrp.priority: %d is outside 1..255 (scanning-only nodes have no vrrp section)", v.Priority)
	}
	if v.Announce.Count < 1 || v.Announce.Count > MaxAnnounceCount {
		bad("vrrp.announce.count: %d is outside 1..%d", v.Announce.Count, MaxAnnounceCount)
	}
	if v.Announce.Interval < 0 || v.Announce.Interval.D() > time.Second {
		bad("vrrp.announce.interval: %v is outside 0..1s", v.Announce.Interval)
	}
	if v.Announce.RepeatAfter < 0 || v.Announce.RepeatAfter.D() > time.Minute {
		bad("vrrp.announce.repeatAfter: %v is outside 0..1m", v.Announce.RepeatAfter)
	}
	if r := v.Announce.Reannounce; r != nil {
		if r.Count < 0 || r.Count > MaxAnnounceCount {
			bad("vrrp.announce.reannounce.count: %d is outside 0..%d", r.Count, MaxAnnounceCount)
		}
		if r.Holdoff.D() < MinReannounceHoldoff || r.Holdoff.D() > time.Minute {
			bad("vrrp.announce.reannounce.holdoff: %v is outside %v..1m", r.Holdoff, MinReannounceHoldoff)
		}
		if r.Refresh != 0 && (r.Refresh.D() < time.Second || r.Refresh.D() > time.Hour) {
			bad("vrrp.announce.reannounce.refresh: %v is neither 0s nor within 1s..1h", r.Refresh)
		}
	}
	if len(v.Groups) == 0 {
		bad("vrrp.groups: a node with a vrrp section needs at least one group")
	}
	vmacs := map[string]bool{}
	if v.RolloutGrace < 0 || v.RolloutGrace.D() > MaxRolloutGrace {
		bad("vrrp.rolloutGrace: %v is outside 0..%v", v.RolloutGrace, MaxRolloutGrace)
	}
	if v.Notify != nil {
		v.Notify.validate(bad)
	}
	names := map[string]bool{}
	type key struct {
		iface  string
		family string
		vrid   int
	}
	vrids := map[key]bool{}
	for i := range v.Groups {
		g := &v.Groups[i]
		at := fmt.Sprintf("vrrp.groups[%d]", i)
		if g.Name == "" || names[g.Name] {
			bad("%s.name: %q must be non-empty and unique", at, g.Name)
		}
		names[g.Name] = true
		if g.VRID < 1 || g.VRID > 255 {
			bad("%s.vrid: %d is outside 1..255", at, g.VRID)
		}
		if k := (key{g.Interface, g.Family, g.VRID}); vrids[k] {
			bad("%s.vrid: %d is used twice on %s for %s", at, g.VRID, g.Interface, g.Family)
		} else {
			vrids[k] = true
		}
		in := ifaces[g.Interface]
		if in == nil {
			bad("%s.interface: %q is not among the plan's interfaces", at, g.Interface)
		}
		if n := g.VMACInterface; n != "" {
			switch {
			case len(n) > MaxIfNameLen || !validIfName(n):
				bad("%s.vmacInterface: %q is not an interface name of 1..%d bytes", at, n, MaxIfNameLen)
			case ifaces[n] != nil || vmacs[n]:
				bad("%s.vmacInterface: %q is already the name of another interface", at, n)
			}
			vmacs[n] = true
		}
		if g.Version != 3 {
			bad("%s.version: %d is not supported (only VRRPv3)", at, g.Version)
		}
		iv := g.AdvertInterval.D()
		if iv < MinAdvertInterval || iv > MaxAdvertInterval || iv%(10*time.Millisecond) != 0 {
			bad("%s.advertInterval: %v must be whole centiseconds in %v..%v", at, iv, MinAdvertInterval, MaxAdvertInterval)
		}
		if g.PreemptDelay < 0 || g.PreemptDelay.D() > MaxPreemptDelay {
			bad("%s.preemptDelay: %v is outside 0..%v", at, g.PreemptDelay, MaxPreemptDelay)
		}
		is4 := g.Family == FamilyIPv4
		switch g.Family {
		case FamilyIPv4:
			if g.Checksum != ChecksumRFC9568 && g.Checksum != ChecksumPseudoHeader {
				bad("%s.checksum: %q is not %s or %s", at, g.Checksum, ChecksumRFC9568, ChecksumPseudoHeader)
			}
			if !g.Source.Is4() {
				bad("%s.source: %v is not an IPv4 address", at, g.Source)
			} else if in != nil && !hasAddr(in.Addresses, g.Source) {
				bad("%s.source: %v is not an address of interface %s", at, g.Source, g.Interface)
			}
		case FamilyIPv6:
			if g.Checksum != "" {
				bad("%s.checksum: IPv6 groups always use the IPv6 pseudo-header; leave it empty", at)
			}
			switch {
			case g.Unicast != nil && g.Source.Is6() && !g.Source.IsLinkLocalUnicast():
				g.Unicast.validateGlobalSource(at, g.Source, in, bad)
			case !g.Source.Is6() || !g.Source.IsLinkLocalUnicast():
				bad("%s.source: %v is not an IPv6 link-local address", at, g.Source)
			case in != nil && in.LinkLocal != g.Source:
				bad("%s.source: %v is not the link-local address of interface %s", at, g.Source, g.Interface)
			}
		default:
			bad("%s.family: %q is not %s or %s", at, g.Family, FamilyIPv4, FamilyIPv6)
		}
		if len(g.VIPs) == 0 {
			bad("%s.vips: a group needs at least one VIP", at)
		}
		seen := map[netip.Addr]bool{}
		linkLocals := 0
		for j, vip := range g.VIPs {
			a := vip.Addr()
			// An IPv6 virtual router may have one link-local VIP (RFC 9568
			// §5.2.9: adverts list it first, erratum 8300; hosts learn it as
			// their default router's address).
			ll := vip.IsValid() && a.IsLinkLocalUnicast()
			if ll {
				linkLocals++
			}
			switch {
			case !vip.IsValid() || a.Is4() != is4 || a.IsUnspecified() || a.IsMulticast() || (ll && is4):
				bad("%s.vips[%d]: %v is not a unicast %s address", at, j, vip, g.Family)
			case ll && linkLocals > 1:
				bad("%s.vips[%d]: %v is a second link-local VIP (a virtual router has at most one)", at, j, vip)
			case seen[a]:
				bad("%s.vips[%d]: %v appears twice", at, j, a)
			case in != nil && hasAddr(in.Addresses, a) && v.Priority != 255:
				bad("%s.vips[%d]: %v is an address of this node, allowed only for the owner (priority 255)", at, j, a)
			}
			seen[a] = true
		}
		for j, peer := range g.Peers {
			a := peer.Address
			if g.Unicast != nil {
				g.Unicast.validatePeer(fmt.Sprintf("%s.peers[%d].address", at, j), a, is4, bad)
			} else if !a.IsValid() || a.Is4() != is4 || (!is4 && !a.IsLinkLocalUnicast()) {
				bad("%s.peers[%d].address: %v is not a valid %s advertiser address", at, j, a, g.Family)
			}
			if a == g.Source {
				bad("%s.peers[%d].address: %v is this node's own source address", at, j, a)
			}
			if peer.Priority < 0 || peer.Priority > 255 {
				bad("%s.peers[%d].priority: %d is outside 0..255", at, j, peer.Priority)
			}
			if g.Auth != nil && g.Auth.Mode == AuthEnforce && !peer.Auth {
				bad("%s.peers[%d]: %s cannot authenticate, but the group enforces authentication", at, j, peer.Name)
			}
		}
		if g.Auth != nil {
			g.Auth.validate(at+".auth", bad)
		}
		if g.Unicast != nil && (g.Unicast.MinTTL < 1 || g.Unicast.MinTTL > 255) {
			bad("%s.unicast.minTTL: %d is outside 1..255", at, g.Unicast.MinTTL)
		}
	}
}

// validatePeer: a unicast peer is a destination too, so it must be a
// unicast address of the group's family; IPv6 peers may be global.
func (u *Unicast) validatePeer(at string, a netip.Addr, is4 bool, bad func(string, ...any)) {
	if !a.IsValid() || a.Is4() != is4 || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		fam := FamilyIPv6
		if is4 {
			fam = FamilyIPv4
		}
		bad("%s: %v is not a unicast %s address", at, a, fam)
	}
}

// validateGlobalSource: a unicast IPv6 group may send from a global
// address of its interface (peers behind routers share no link).
func (u *Unicast) validateGlobalSource(at string, src netip.Addr, in *Interface, bad func(string, ...any)) {
	if src.IsMulticast() || src.IsUnspecified() || src.IsLoopback() {
		bad("%s.source: %v is not a unicast IPv6 address", at, src)
	} else if in != nil && !hasAddr(in.Addresses, src) {
		bad("%s.source: %v is not an address of interface %s", at, src, in.Name)
	}
}

func (a *Auth) validate(at string, bad func(string, ...any)) {
	switch a.Mode {
	case AuthEnforce, AuthPermissive, AuthReceiveOnly:
	default:
		bad("%s.mode: %q is not %s, %s or %s", at, a.Mode, AuthEnforce, AuthPermissive, AuthReceiveOnly)
	}
	if len(a.Keys) == 0 {
		bad("%s.keys: at least one key is needed", at)
	}
	ids := map[int]bool{}
	for i, k := range a.Keys {
		if k.ID < 1 || k.ID > 255 || ids[k.ID] {
			bad("%s.keys[%d].id: %d must be unique in 1..255", at, i, k.ID)
		}
		ids[k.ID] = true
		if !filepath.IsAbs(k.File) || filepath.Clean(k.File) != k.File {
			bad("%s.keys[%d].file: %q is not a clean absolute path", at, i, k.File)
		}
	}
	if !ids[a.ActiveKey] {
		bad("%s.activeKey: %d is not among the keys", at, a.ActiveKey)
	}
	if w := a.Window.D(); w != 0 && (w < MinAuthWindow || w > MaxAuthWindow || w%time.Second != 0) {
		bad("%s.window: %v is not whole seconds in %v..%v", at, w, MinAuthWindow, MaxAuthWindow)
	}
}

func (m *Management) validate(self string, ifaces map[string]*Interface, bad func(string, ...any)) {
	in := ifaces[m.Interface]
	if in == nil {
		bad("management.interface: %q is not among the plan's interfaces", m.Interface)
	}
	if !m.Address.Is4() {
		bad("management.address: %v is not an IPv4 address", m.Address)
	} else if in != nil && !hasAddr(in.Addresses, m.Address) {
		bad("management.address: %v is not an address of interface %s", m.Address, m.Interface)
	}
	broadcasts := m.Discovery == "" || m.Discovery == DiscoveryBroadcast
	switch {
	case m.Discovery != "" && m.Discovery != DiscoveryBroadcast && m.Discovery != DiscoveryUnicast:
		bad("management.discovery: %q is not %s or %s", m.Discovery, DiscoveryBroadcast, DiscoveryUnicast)
	case broadcasts && !m.Broadcast.Is4():
		bad("management.broadcast: %v is not an IPv4 address", m.Broadcast)
	case !broadcasts && m.Broadcast.IsValid() && !m.Broadcast.Is4():
		bad("management.broadcast: %v is not an IPv4 address", m.Broadcast)
	}
	if m.Port < 1 || m.Port > 65535 {
		bad("management.port: %d is outside 1..65535", m.Port)
	}
	if d := m.DiscoveryInterval.D(); d < MinDiscovery || d > MaxDiscovery {
		bad("management.discoveryInterval: %v is outside %v..%v", d, MinDiscovery, MaxDiscovery)
	}
	if m.DeadAfter < 2 || m.DeadAfter > MaxDeadAfter {
		bad("management.deadAfter: %d is outside 2..%d", m.DeadAfter, MaxDeadAfter)
	}
	if m.Version < 0 || m.Version > 2 {
		bad("management.version: %d is not 1 or 2", m.Version)
	}
	if m.KeyFile == "" && !m.Unauthenticated {
		bad("management.keyFile: required unless unauthenticated is set explicitly")
	}
	if m.KeyFile != "" && m.Unauthenticated {
		bad("management: keyFile and unauthenticated exclude each other")
	}
	names := map[string]bool{}
	addrs := map[netip.Addr]bool{}
	selfListed := false
	for i, mem := range m.Members {
		if mem.Name == "" || names[mem.Name] {
			bad("management.members[%d].name: %q must be non-empty and unique", i, mem.Name)
		}
		if !mem.Address.Is4() || addrs[mem.Address] {
			bad("management.members[%d].address: %v must be a unique IPv4 address", i, mem.Address)
		}
		names[mem.Name], addrs[mem.Address] = true, true
		if broadcasts && mem.Address == m.Broadcast {
			// A /31 or /32 has no broadcast address: discovery sent to a
			// member's own address reaches no one else.
			bad("management.broadcast: %v is the address of member %s, not a broadcast address", m.Broadcast, mem.Name)
		}
		if mem.Name == self {
			selfListed = true
			if mem.Address != m.Address {
				bad("management.members[%d].address: %v differs from this node's management address %v", i, mem.Address, m.Address)
			}
		}
	}
	if !selfListed {
		bad("management.members: this node is not listed")
	}
}

func hasAddr(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// Limits of notify commands.
const (
	MinNotifyTimeout = time.Second
	MaxNotifyTimeout = 10 * time.Minute
)

func (n *Notify) validate(bad func(string, ...any)) {
	if t := n.Timeout.D(); t < MinNotifyTimeout || t > MaxNotifyTimeout {
		bad("vrrp.notify.timeout: %v is outside %v..%v", n.Timeout, MinNotifyTimeout, MaxNotifyTimeout)
	}
	if len(n.Active)+len(n.Backup)+len(n.Fault) == 0 {
		bad("vrrp.notify: no command")
	}
	for _, c := range []struct {
		state string
		argv  []string
	}{{"active", n.Active}, {"backup", n.Backup}, {"fault", n.Fault}} {
		if len(c.argv) > 0 && (!filepath.IsAbs(c.argv[0]) || filepath.Clean(c.argv[0]) != c.argv[0]) {
			bad("vrrp.notify.%s: %q is not a clean absolute path", c.state, c.argv[0])
		}
		for i, a := range c.argv {
			if strings.ContainsRune(a, 0) {
				bad("vrrp.notify.%s[%d]: contains a NUL byte", c.state, i)
			}
		}
	}
}
