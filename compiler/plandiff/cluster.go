package plandiff

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/runtime/plan"
)

func usesProtocols(mode string) bool {
	return mode == plan.ModeTransparentRouter || mode == plan.ModeHAProxy
}

func (d *differ) clusterAdded() {
	var dirs, scanners []string
	for _, n := range d.a.directors() {
		dirs = append(dirs, fmt.Sprintf("%s (%d)", n.name, n.priority))
	}
	for _, name := range sortedKeys(d.a.nodes) {
		if d.a.nodes[name].priority == 0 {
			scanners = append(scanners, name)
		}
	}
	detail := fmt.Sprintf("mode %s, directors: %s", d.a.mode, orNone(dirs))
	detail += ", scanning only: " + orNone(scanners)
	c := Change{Op: OpAdd, Subject: "cluster " + d.a.name, Detail: detail, Wire: usesProtocols(d.a.mode),
		Effect: "new plans: VRRP and discovery start as the agents start"}
	if !c.Wire {
		c.Effect = noWire + ": explicit-proxy runs neither protocol"
	}
	d.add(c)
	for _, g := range sortedKeys(d.a.groups) {
		d.groupAdded(d.a.groups[g])
	}
	d.managementAddedOrRemoved()
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (d *differ) clusterRemoved() {
	c := Change{Op: OpRemove, Subject: "cluster " + d.b.name, Detail: fmt.Sprintf("%d plans deleted", len(d.b.nodes)), Wire: usesProtocols(d.b.mode)}
	c.Effect = "the agents keep running their last plans until you stop them"
	if o, ok := d.firstOutcome(func(o outcome) bool { return o.before != "" }); ok {
		var vips []string
		for _, g := range sortedKeys(d.b.groups) {
			vips = append(vips, joinAddrs(d.b.groups[g].VIPs))
		}
		c.Effect += fmt.Sprintf("; stopping the Active (%s) hands over and removes VIPs %s, which nothing answers for afterwards", o.before, strings.Join(vips, ", "))
	}
	d.add(c)
}

func (d *differ) mode() {
	if d.b.mode == d.a.mode {
		return
	}
	c := Change{Op: OpUpdate, Subject: "cluster " + d.a.name, Detail: fmt.Sprintf("mode %s → %s", d.b.mode, d.a.mode)}
	switch {
	case usesProtocols(d.b.mode) && usesProtocols(d.a.mode):
		c.Effect = noWire + ": both modes run VRRP and the management protocol"
	case usesProtocols(d.a.mode):
		c.Effect, c.Wire = "VRRP and the management protocol start (below)", true
	default:
		c.Effect, c.Wire = "explicit-proxy runs neither protocol: VRRP and the management protocol stop (below)", true
	}
	d.add(c)
}

func (d *differ) announce() {
	ba, aa := d.b.announce, d.a.announce
	if ba == nil || aa == nil || *ba == *aa {
		return
	}
	var parts []string
	if ba.Count != aa.Count {
		parts = append(parts, fmt.Sprintf("count %d → %d", ba.Count, aa.Count))
	}
	if ba.Interval != aa.Interval {
		parts = append(parts, fmt.Sprintf("interval %s → %s", dur(ba.Interval.D()), dur(aa.Interval.D())))
	}
	if ba.RepeatAfter != aa.RepeatAfter {
		parts = append(parts, fmt.Sprintf("repeatAfter %s → %s", dur(ba.RepeatAfter.D()), dur(aa.RepeatAfter.D())))
	}
	e := fmt.Sprintf("%s now; the next takeover announces each VIP %d times, %s apart", noWire, aa.Count, dur(aa.Interval.D()))
	if aa.RepeatAfter > 0 {
		e += fmt.Sprintf(", again after %s", dur(aa.RepeatAfter.D()))
	}
	d.add(Change{Op: OpUpdate, Subject: "announce", Detail: strings.Join(parts, ", "), Effect: e})
}

func (d *differ) managementAddedOrRemoved() bool {
	bm, am := d.b.mgmt, d.a.mgmt
	switch {
	case bm == nil && am != nil:
		d.add(Change{Op: OpAdd, Subject: "management", Wire: true,
			Detail: fmt.Sprintf("segment %s, port %d, every %s", am.Interface, am.Port, dur(am.DiscoveryInterval.D())),
			Effect: fmt.Sprintf("the Active director broadcasts discovery to %s:%d every %s and every node answers", am.Broadcast, am.Port, dur(am.DiscoveryInterval.D()))})
	case bm != nil && am == nil:
		d.add(Change{Op: OpRemove, Subject: "management", Wire: true,
			Detail: fmt.Sprintf("segment %s, port %d", bm.Interface, bm.Port),
			Effect: "discovery and answers stop; the Active keeps no table of scanning nodes"})
	default:
		return false
	}
	return true
}

func (d *differ) management() {
	if d.managementAddedOrRemoved() {
		return
	}
	bm, am := d.b.mgmt, d.a.mgmt
	if bm == nil || am == nil {
		return
	}
	add := func(detail, effect string, wire bool) {
		d.add(Change{Op: OpUpdate, Subject: "management", Detail: detail, Effect: effect, Wire: wire})
	}
	if bm.Interface != am.Interface || bm.Broadcast != am.Broadcast {
		add(fmt.Sprintf("segment %s → %s, broadcast %s → %s", bm.Interface, am.Interface, bm.Broadcast, am.Broadcast),
			"discovery and answers move to the new segment as the plans land; nodes on different segments do not hear each other meanwhile", true)
	}
	if bm.Port != am.Port {
		add(fmt.Sprintf("port %d → %d", bm.Port, am.Port),
			fmt.Sprintf("until every node runs the new plan, nodes on different ports do not hear each other: the Active marks those it no longer hears down after %d missed answers (%s)",
				am.DeadAfter, dur(am.DiscoveryInterval.D()*timeN(am.DeadAfter))), true)
	}
	if bm.DiscoveryInterval != am.DiscoveryInterval || bm.DeadAfter != am.DeadAfter {
		add(fmt.Sprintf("discoveryInterval %s → %s, deadAfter %d → %d", dur(bm.DiscoveryInterval.D()), dur(am.DiscoveryInterval.D()), bm.DeadAfter, am.DeadAfter),
			fmt.Sprintf("the Active discovers every %s and marks a node down after %d missed answers: %s, was %s",
				dur(am.DiscoveryInterval.D()), am.DeadAfter, dur(am.DiscoveryInterval.D()*timeN(am.DeadAfter)), dur(bm.DiscoveryInterval.D()*timeN(bm.DeadAfter))), true)
	}
	if bm.KeyFile != am.KeyFile || bm.Unauthenticated != am.Unauthenticated {
		add(fmt.Sprintf("key %s → %s", keyText(bm), keyText(am)), keyEffect(am), true)
	}
	if bm.TableFile != am.TableFile {
		add(fmt.Sprintf("tableFile %q → %q", bm.TableFile, am.TableFile), noWire+": only where the Active writes its table", false)
	}
	d.discovery(bm, am)
	known := []string{"interface", "address", "broadcast", "port", "discoveryInterval", "deadAfter", "keyFile", "unauthenticated", "tableFile", "members", "discovery"}
	for _, f := range otherFields(bm, am, known) {
		add(f, "the management protocol takes it on reload; mwgc plan does not know this setting by name", true)
	}
}

func keyText(m *plan.Management) string {
	if m.Unauthenticated {
		return "none (unauthenticated)"
	}
	return m.KeyFile
}

func keyEffect(m *plan.Management) string {
	if m.Unauthenticated {
		return "messages are sent without authentication once each plan lands; nodes still on the old plan drop them until theirs lands"
	}
	return fmt.Sprintf("messages are signed with the first key in %s once each plan lands: put the same keys there on every node before the roll-out, or answers are dropped", m.KeyFile)
}

// diffSegments compares the segments, which plans do not carry: none of
// their changes is on the wire by itself.
func diffSegments(b, a *repoView) []Change {
	out := []Change{}
	for _, name := range unionKeys(b.segments, a.segments) {
		bs, bok := b.segments[name]
		as, aok := a.segments[name]
		subject := "segment " + name
		switch {
		case !bok:
			out = append(out, Change{Op: OpAdd, Subject: subject, Detail: segmentText(as), Effect: noWire})
		case !aok:
			out = append(out, Change{Op: OpRemove, Subject: subject, Detail: segmentText(bs), Effect: noWire})
		default:
			if !slices.Equal(bs.CIDRs, as.CIDRs) {
				out = append(out, Change{Op: OpUpdate, Subject: subject, Detail: fmt.Sprintf("cidrs %s → %s", prefixes(bs.CIDRs), prefixes(as.CIDRs)),
					Effect: noWire + " by itself: addresses and VIPs on it take their prefix lengths from it (see the clusters)"})
			}
			if bs.Protected != as.Protected || bs.Waiver != as.Waiver {
				out = append(out, Change{Op: OpUpdate, Subject: subject, Detail: protectionText(bs) + " → " + protectionText(as),
					Effect: noWire + ": it only changes what mwgc validate accepts"})
			}
		}
	}
	return out
}

func segmentText(s compiler.Segment) string {
	return prefixes(s.CIDRs) + ", " + protectionText(s)
}

func protectionText(s compiler.Segment) string {
	switch {
	case s.Protected:
		return "protected"
	case s.Waiver != "":
		return fmt.Sprintf("not protected, waived (%q)", s.Waiver)
	}
	return "not protected"
}

// otherSections reports the plan sections and VRRP fields this package
// does not know by name, field by field, so that nothing is hidden.
func (d *differ) otherSections() {
	for _, k := range unionKeys(d.b.extra, d.a.extra) {
		bv, bok := d.b.extra[k]
		av, aok := d.a.extra[k]
		switch {
		case !bok:
			d.add(Change{Op: OpAdd, Subject: k, Detail: string(av), Wire: true, Effect: unknownEffect})
		case !aok:
			d.add(Change{Op: OpRemove, Subject: k, Wire: true, Effect: unknownEffect})
		default:
			var bm, am map[string]json.RawMessage
			if json.Unmarshal(bv, &bm) != nil || json.Unmarshal(av, &am) != nil {
				if string(bv) != string(av) {
					d.add(Change{Op: OpUpdate, Subject: k, Detail: fmt.Sprintf("%s → %s", bv, av), Wire: true, Effect: unknownEffect})
				}
				continue
			}
			for _, f := range otherFields(bm, am, nil) {
				d.add(Change{Op: OpUpdate, Subject: k, Detail: f, Wire: true, Effect: unknownEffect})
			}
		}
	}
	if d.b.vrrpExtra != nil && d.a.vrrpExtra != nil {
		const notifyEffect = noWire + ": the directors run the new commands from the next state change after their plans land"
		switch bn, an := d.b.vrrpExtra.Notify, d.a.vrrpExtra.Notify; {
		case bn == nil && an != nil:
			d.add(Change{Op: OpAdd, Subject: "notify", Detail: notifyText(an), Effect: notifyEffect})
		case bn != nil && an == nil:
			d.add(Change{Op: OpRemove, Subject: "notify", Effect: noWire + ": the directors run no command on state changes once their plans land"})
		default:
			for _, f := range otherFields(notifyOf(d.b.vrrpExtra), notifyOf(d.a.vrrpExtra), nil) {
				d.add(Change{Op: OpUpdate, Subject: "notify", Detail: f, Effect: notifyEffect})
			}
		}
		if bg, ag := d.b.vrrpExtra.RolloutGrace, d.a.vrrpExtra.RolloutGrace; bg != ag {
			d.add(Change{Op: OpUpdate, Subject: "vrrp", Detail: fmt.Sprintf("rolloutGrace %s → %s", dur(bg.D()), dur(ag.D())),
				Effect: fmt.Sprintf("%s: raised priorities and longer intervals of later changes wait %s after their plan lands, so every director must load a plan within %s of the first", noWire, dur(ag.D()), dur(ag.D()))})
		}
		for _, f := range otherFields(d.b.vrrpExtra, d.a.vrrpExtra, []string{"priority", "announce", "groups", "rolloutGrace", "notify"}) {
			d.add(Change{Op: OpUpdate, Subject: "vrrp", Detail: f, Wire: true, Effect: unknownEffect})
		}
	}
}

// unknownEffect is said of a setting whose effect this package does not know.
const unknownEffect = "the agents apply it as their plans land; mwgc plan does not describe this setting's effect"

func notifyOf(v *plan.VRRP) plan.Notify {
	if v.Notify == nil {
		return plan.Notify{}
	}
	return *v.Notify
}

func notifyText(n *plan.Notify) string {
	var parts []string
	for _, c := range []struct {
		state string
		argv  []string
	}{{"active", n.Active}, {"backup", n.Backup}, {"fault", n.Fault}} {
		if len(c.argv) > 0 {
			parts = append(parts, c.state+": "+strings.Join(c.argv, " "))
		}
	}
	return strings.Join(append(parts, "timeout "+dur(n.Timeout.D())), "; ")
}
