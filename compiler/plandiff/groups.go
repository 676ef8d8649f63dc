package plandiff

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

func (d *differ) groups() {
	for _, g := range unionKeys(d.b.groups, d.a.groups) {
		bg, ag := d.b.groups[g], d.a.groups[g]
		switch {
		case bg == nil:
			d.groupAdded(ag)
		case ag == nil:
			d.groupRemoved(bg)
		case replacedGroup(d.b, d.a, g):
			d.groupReplaced(bg, ag)
		default:
			d.groupChanged(bg, ag)
		}
	}
}

func groupDetail(g *groupView) string {
	return fmt.Sprintf("VRID %d on segment %s, %s, every %s", g.VRID, g.segment, vipNoun(g.VIPs), dur(g.AdvertInterval.D()))
}

func (d *differ) groupAdded(g *groupView) {
	o := d.out[g.Name]
	c := Change{Op: OpAdd, Subject: "group " + g.Name, Detail: groupDetail(g), Wire: true}
	if o.after == "" {
		c.Effect = "no director runs it"
		d.add(c)
		return
	}
	if o.kind == joins {
		c.Effect = fmt.Sprintf("the Active (%s) runs it as Active as soon as its plan lands, adds %s and %s; the other directors start it as Backup",
			o.after, vipNoun(g.VIPs), d.announcement(g.Family))
	} else {
		c.Effect = fmt.Sprintf("every director starts it as Backup; %s (priority %d) times out first and takes %s %s, and %s",
			o.after, o.afterPrio, vipNoun(g.VIPs), d.takeoverIn(o), d.announcement(g.Family))
	}
	d.add(c)
	if act := d.retainedActive(); act != "" && len(directorNames(d.a, act)) > 0 {
		d.advise(fmt.Sprintf("Roll out %s's plan before the other directors': a director whose new group %s starts first finds no Active in it, takes it over and drags its other groups along against %s, back and forth, until %s runs the group too.",
			act, g.Name, act, act))
	}
}

// retainedActive is the Active after the change in the groups that exist
// on both sides.
func (d *differ) retainedActive() string {
	o, _ := d.firstOutcome(func(o outcome) bool {
		return o.after != "" && d.b.groups[o.group] != nil && !replacedGroup(d.b, d.a, o.group)
	})
	return o.after
}

func (d *differ) groupRemoved(g *groupView) {
	o := d.out[g.Name]
	c := Change{Op: OpRemove, Subject: "group " + g.Name, Detail: groupDetail(g), Wire: true}
	if o.before == "" {
		c.Effect = noWire
		c.Wire = false
		d.add(c)
		return
	}
	c.Effect = fmt.Sprintf("the Active (%s) hands over with a priority-0 advert and removes %s; nothing answers for %s afterwards", o.before, vipNoun(g.VIPs), itThem(g.VIPs))
	d.add(c)
	if backups := directorNames(d.b, o.before); len(backups) > 0 && d.a.groups[g.Name] == nil && len(d.a.nodes) > 0 {
		d.advise(fmt.Sprintf("Roll out the plans of %s before %s's: a director still running group %s takes its VIPs after Skew_Time, and its other groups with them.",
			joinNames(backups), o.before, g.Name))
	}
}

func (d *differ) groupReplaced(bg, ag *groupView) {
	var parts []string
	if bg.VRID != ag.VRID {
		parts = append(parts, fmt.Sprintf("VRID %d → %d", bg.VRID, ag.VRID))
	}
	if bg.Family != ag.Family {
		parts = append(parts, fmt.Sprintf("family %s → %s", bg.Family, ag.Family))
	}
	if bg.segment != ag.segment {
		parts = append(parts, fmt.Sprintf("segment %s → %s", bg.segment, ag.segment))
	}
	o := d.out[ag.Name]
	effect := fmt.Sprintf("a new virtual router: on each director the old one hands over with a priority-0 advert and the new one starts as Backup; %s (priority %d) takes %s %s",
		o.after, o.afterPrio, vipNoun(ag.VIPs), d.takeoverIn(o))
	if o.kind == joins {
		effect = fmt.Sprintf("a new virtual router: on each director the old one hands over with a priority-0 advert; the new one starts as Active at once on the Active (%s), which keeps %s, and as Backup elsewhere",
			o.after, vipNoun(ag.VIPs))
	}
	d.add(Change{Op: OpReplace, Subject: "group " + ag.Name, Detail: joinSentences(parts), Wire: true, Effect: effect})
	d.advise(fmt.Sprintf("Roll group %s's new virtual router out to every director at once: while some run the old one and some the new one, two directors hold %s, one per virtual router.",
		ag.Name, vipNoun(ag.VIPs)))
	d.groupSettings(bg, ag)
}

func (d *differ) groupChanged(bg, ag *groupView) {
	d.vips(bg, ag)
	d.groupSettings(bg, ag)
}

// vips reports VIPs added, removed, and given a new prefix length.
func (d *differ) vips(bg, ag *groupView) {
	holder := d.out[ag.Name].after
	if holder == "" {
		holder = "no director"
	}
	byAddr := func(ps []netip.Prefix) map[netip.Addr]netip.Prefix {
		m := map[netip.Addr]netip.Prefix{}
		for _, p := range ps {
			m[p.Addr()] = p
		}
		return m
	}
	bm, am := byAddr(bg.VIPs), byAddr(ag.VIPs)
	for _, p := range ag.VIPs {
		subject := fmt.Sprintf("VIP %s of group %s", p.Addr(), ag.Name)
		old, ok := bm[p.Addr()]
		switch {
		case !ok:
			d.add(Change{Op: OpAdd, Subject: subject, Detail: p.String(), Wire: true,
				Effect: fmt.Sprintf("the Active (%s) adds it once its plan lands and %s", holder, d.announcement(ag.Family))})
		case old.Bits() != p.Bits():
			d.add(Change{Op: OpUpdate, Subject: subject, Detail: fmt.Sprintf("prefix length /%d → /%d", old.Bits(), p.Bits()), Wire: true,
				Effect: fmt.Sprintf("the Active (%s) adds it with the new prefix length before removing the old one", holder)})
		}
	}
	for _, p := range bg.VIPs {
		if _, ok := am[p.Addr()]; !ok {
			d.add(Change{Op: OpRemove, Subject: fmt.Sprintf("VIP %s of group %s", p.Addr(), ag.Name), Detail: p.String(), Wire: true,
				Effect: fmt.Sprintf("the Active (%s) removes it once its plan lands; nothing answers for it afterwards", d.out[ag.Name].before)})
		}
	}
}

// groupSettings reports the settings a group keeps across a reload
// (reconfigured in place), and any it does not know by name.
func (d *differ) groupSettings(bg, ag *groupView) {
	subject := "group " + ag.Name
	o := d.out[ag.Name]
	if bg.AdvertInterval != ag.AdvertInterval {
		d.add(Change{Op: OpUpdate, Subject: subject, Wire: true,
			Detail: fmt.Sprintf("advertInterval %s → %s", dur(bg.AdvertInterval.D()), dur(ag.AdvertInterval.D())),
			Effect: d.intervalEffect(bg, ag, o)})
	}
	if bg.Preempt != ag.Preempt {
		d.add(d.preemptChange(bg, ag, o))
	}
	if bg.PreemptDelay != ag.PreemptDelay {
		d.add(Change{Op: OpUpdate, Subject: subject, Detail: fmt.Sprintf("preemptDelay %s → %s", dur(bg.PreemptDelay.D()), dur(ag.PreemptDelay.D())),
			Effect: fmt.Sprintf("%s now; a director preempting a lower-priority Active waits %s first", noWire, dur(ag.PreemptDelay.D()))})
	}
	if bg.AcceptMode != ag.AcceptMode {
		what := "accepts"
		if !ag.AcceptMode {
			what = "no longer accepts"
		}
		d.add(Change{Op: OpUpdate, Subject: subject, Detail: "acceptMode " + onOff(bg.AcceptMode) + " → " + onOff(ag.AcceptMode), Wire: true,
			Effect: fmt.Sprintf("the Active %s packets addressed to %s (VRRP adverts are unchanged)", what, joinAddrs(ag.VIPs))})
	}
	if bg.Checksum != ag.Checksum && ag.Family == plan.FamilyIPv4 {
		e := fmt.Sprintf("each director sends its adverts with the %s checksum once its plan lands; mwgc directors accept both forms, so the order does not matter", ag.Checksum)
		if ag.Checksum == plan.ChecksumRFC9568 && len(ag.external) > 0 {
			e += "; keepalived and FRR peers drop this form (rule checksum-interop)"
		}
		d.add(Change{Op: OpUpdate, Subject: subject, Detail: fmt.Sprintf("checksum %s → %s", bg.Checksum, ag.Checksum), Wire: true, Effect: e})
	}
	d.externalPeers(bg, ag, o)
	d.authentication(bg, ag)
	d.transport(bg, ag)
	d.otherGroupFields(bg, ag)
}

func (d *differ) intervalEffect(bg, ag *groupView, o outcome) string {
	act := o.after
	if act == "" {
		return noWire + ": no director runs the group"
	}
	iv := ag.AdvertInterval.D()
	var s string
	if iv > bg.AdvertInterval.D() {
		s = fmt.Sprintf("%s advertises every %s the rollout grace (%s) after its plan lands; backups time the Active out on the interval their own plan gives it, the old one still allowed for twice the grace",
			act, dur(iv), dur(d.a.grace))
		d.adviseGrace(fmt.Sprintf("a backup still on the old plan times %s out on the old, shorter interval once %s advertises the longer one, and takes over.", act, act))
	} else {
		s = fmt.Sprintf("%s advertises every %s as soon as its plan lands; a backup still on the old plan keeps timing it out on the old, longer interval until its own plan lands", act, dur(iv))
	}
	next := bestExcept(d.a.candidates(ag.Name), act)
	if next.name != "" {
		was := vrrp.ActiveDownInterval(uint8(d.b.priorityOf(ag.Name, next.name)), bg.AdvertInterval.D())
		now := vrrp.ActiveDownInterval(uint8(next.priority), iv)
		s += fmt.Sprintf("; a crash of %s is noticed by %s after %s (Active_Down_Interval), was %s", act, next.name, dur(now), dur(was))
	}
	return s
}

func (d *differ) preemptChange(bg, ag *groupView, o outcome) Change {
	c := Change{Op: OpUpdate, Subject: "group " + ag.Name, Detail: "preempt " + onOff(bg.Preempt) + " → " + onOff(ag.Preempt)}
	switch {
	case o.kind == preempts:
		c.Wire = true
		c.Effect = fmt.Sprintf("once %s's plan lands it preempts: %s", o.after, d.vipsMove(o))
	case ag.Preempt:
		c.Effect = noWire + " now: the Active already has the best priority; a better director that returns takes over"
	default:
		c.Effect = noWire + " now; a director with a higher priority than the Active no longer takes over, it waits for the Active to fail"
	}
	return c
}

func (d *differ) externalPeers(bg, ag *groupView, o outcome) {
	for _, name := range unionKeys(bg.external, ag.external) {
		bp, bok := bg.external[name]
		ap, aok := ag.external[name]
		subject := fmt.Sprintf("external peer %s of group %s", name, ag.Name)
		var c Change
		switch {
		case !bok:
			c = Change{Op: OpAdd, Subject: subject, Detail: fmt.Sprintf("address %s, priority %d", ap.Address, ap.Priority),
				Effect: "the directors accept its adverts once their plans land"}
		case !aok:
			c = Change{Op: OpRemove, Subject: subject, Detail: fmt.Sprintf("address %s, priority %d", bp.Address, bp.Priority),
				Effect: "the directors drop its adverts (unknown-source) once their plans land"}
		case bp.Address != ap.Address:
			c = Change{Op: OpUpdate, Subject: subject, Detail: fmt.Sprintf("address %s → %s", bp.Address, ap.Address),
				Effect: fmt.Sprintf("the directors accept its adverts only from %s once their plans land", ap.Address)}
		case bp.Priority != ap.Priority:
			c = Change{Op: OpUpdate, Subject: subject, Detail: fmt.Sprintf("priority %d → %d", bp.Priority, ap.Priority),
				Effect: fmt.Sprintf("%s by itself: the directors count its adverts as priority %d at most (the plan is election policy); set the same on the peer", noWire, ap.Priority)}
		default:
			continue
		}
		c.Wire = c.Op != OpUpdate || bp.Address != ap.Address
		if o.moves() && (o.after == name || o.before == name) {
			c.Effect += "; " + d.reason(o) + ": " + d.vipsMove(o)
		}
		d.add(c)
	}
}

// known lists the group fields described by name above; others (added to
// the plan format later) are reported as they are.
var knownGroupFields = []string{"name", "vrid", "interface", "family", "advertInterval", "preempt", "preemptDelay",
	"acceptMode", "checksum", "source", "vips", "peers", "auth", "unicast"}

func (d *differ) otherGroupFields(bg, ag *groupView) {
	for _, f := range otherFields(bg.Group, ag.Group, knownGroupFields) {
		d.add(Change{Op: OpUpdate, Subject: "group " + ag.Name, Detail: f, Wire: true,
			Effect: "the agent reconfigures the group in place; mwgc plan does not know this setting by name"})
	}
}

// otherFields compares two values field by field through their JSON form
// and describes the fields not in known that differ.
func otherFields(before, after any, known []string) []string {
	bm, am := jsonFields(before), jsonFields(after)
	var out []string
	for _, k := range unionKeys(bm, am) {
		if slices.Contains(known, k) || reflect.DeepEqual(bm[k], am[k]) {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s → %s", k, compact(bm[k]), compact(am[k])))
	}
	return out
}

func jsonFields(v any) map[string]json.RawMessage {
	b, ok := v.([]byte)
	if !ok {
		b, _ = json.Marshal(v)
	}
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(b, &m)
	for k, raw := range m {
		var x any
		_ = json.Unmarshal(raw, &x)
		nb, _ := json.Marshal(x)
		m[k] = nb
	}
	return m
}

func compact(raw json.RawMessage) string {
	if raw == nil || string(raw) == "null" {
		return "(unset)"
	}
	return string(raw)
}

func itThem(vips []netip.Prefix) string {
	if len(vips) == 1 {
		return "it"
	}
	return "them"
}
