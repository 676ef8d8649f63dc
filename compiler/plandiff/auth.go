package plandiff

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mwgc/mwgc/runtime/plan"
)

// authentication reports changes of a group's advert authentication
// (keepalived's auth_hmac). A director that enforces drops the unsigned
// adverts of a peer still on the old plan, and one without authentication
// drops signed ones, so the safe path is receive-only → permissive →
// enforce, one roll-out each (docs/security.md), and back the same way.
func (d *differ) authentication(bg, ag *groupView) {
	ba, aa := bg.Auth, ag.Auth
	subject := "group " + ag.Name
	add := func(detail, effect string, wire bool) {
		d.add(Change{Op: OpUpdate, Subject: subject, Detail: detail, Effect: effect, Wire: wire})
	}
	switch {
	case ba == nil && aa == nil:
		return
	case ba == nil || aa == nil || ba.Mode != aa.Mode:
		from, to := authMode(ba), authMode(aa)
		effect, safe := authStep(from, to)
		add("authentication "+from+" → "+to, effect, true)
		if !safe {
			d.advise(fmt.Sprintf("Group %s goes from %s to %s in one step: while some directors run the old plan, adverts one side sends are dropped by the other and both sides may be Active. Step through receive-only and permissive, one roll-out each.",
				ag.Name, from, to))
		}
		if ba == nil || aa == nil {
			return
		}
	}
	if ba.ActiveKey != aa.ActiveKey {
		add(fmt.Sprintf("activeKey %d → %d", ba.ActiveKey, aa.ActiveKey),
			fmt.Sprintf("adverts are signed with key %d as each plan lands; a director that does not list key %d drops them", aa.ActiveKey, aa.ActiveKey), true)
		if !slices.ContainsFunc(ba.Keys, func(k plan.Key) bool { return k.ID == aa.ActiveKey }) {
			d.advise(fmt.Sprintf("Key %d of group %s signs in the same change that adds it: add it everywhere first, move activeKey in a later change.", aa.ActiveKey, ag.Name))
		}
	}
	added, removed := diffKeys(ba.Keys, aa.Keys)
	if len(added) > 0 {
		add("keys + "+strings.Join(added, ", "), "adverts signed with these keys are accepted once each plan lands; put the key files on every director first, or the plan is refused there", false)
	}
	if len(removed) > 0 {
		add("keys - "+strings.Join(removed, ", "), "adverts signed with these keys are dropped once each plan lands", true)
	}
	if ba.Window != aa.Window {
		add(fmt.Sprintf("window %s → %s", windowText(ba.Window), windowText(aa.Window)), noWire+": how far an advert's timestamp may be from the receiver's clock", false)
	}
}

func authMode(a *plan.Auth) string {
	if a == nil {
		return "none"
	}
	return a.Mode
}

// authSteps are the modes in roll-out order.
var authSteps = []string{"none", plan.AuthReceiveOnly, plan.AuthPermissive, plan.AuthEnforce}

// authStep says what a mode change does on the wire and whether it is
// one step of the safe path.
func authStep(from, to string) (string, bool) {
	i, j := slices.Index(authSteps, from), slices.Index(authSteps, to)
	safe := i-j == 1 || j-i == 1
	var e string
	switch to {
	case "none":
		e = "adverts are sent unsigned and signed ones are dropped as each plan lands"
	case plan.AuthReceiveOnly:
		e = "adverts are sent unsigned; signed and unsigned ones are accepted"
	case plan.AuthPermissive:
		e = "adverts are signed; signed and unsigned ones are accepted"
	case plan.AuthEnforce:
		e = "adverts are signed; unsigned ones are dropped"
	}
	e += " once each director's plan lands"
	if safe {
		e += "; every director on either plan accepts what the other sends, so the order does not matter"
	}
	return e, safe
}

func diffKeys(before, after []plan.Key) (added, removed []string) {
	text := func(k plan.Key) string { return fmt.Sprintf("%d (%s)", k.ID, k.File) }
	for _, k := range after {
		if !slices.Contains(before, k) {
			added = append(added, text(k))
		}
	}
	for _, k := range before {
		if !slices.Contains(after, k) {
			removed = append(removed, text(k))
		}
	}
	return added, removed
}

func windowText(w plan.Duration) string {
	if w == 0 {
		return "default"
	}
	return dur(w.D())
}
