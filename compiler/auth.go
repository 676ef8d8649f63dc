package compiler

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"github.com/mwgc/mwgc/runtime/plan"
)

// Authenticated VRRP (docs/security.md): every group on a segment that is
// not protected authenticates its adverts, or says in writing why not.

// groupAuth is the authentication a group runs with (its own, else the
// cluster's default; nil when none or when it opts out) and where it is
// written.
func groupAuth(v *vrrpDoc, g groupDoc, cl *cluster, gname string) (*authDoc, []cue.Selector) {
	switch {
	case g.Unauthenticated != nil:
		return nil, nil
	case g.Authentication != nil:
		return g.Authentication, sel("clusters", cl.name, "vrrp", "groups", gname, "authentication")
	case v.Authentication != nil:
		return v.Authentication, sel("clusters", cl.name, "vrrp", "authentication")
	}
	return nil, nil
}

func authMode(a *authDoc) string {
	if a.Mode == "" {
		return plan.AuthEnforce
	}
	return a.Mode
}

func (c *checker) checkVRRPAuth(cl *cluster) {
	v := cl.doc.VRRP
	vpath := func(rest ...any) []cue.Selector { return sel(append([]any{"clusters", cl.name, "vrrp"}, rest...)...) }
	c.checkDuration(cl, vpath("rolloutGrace"), v.RolloutGrace, 0, plan.MaxRolloutGrace, 0)
	if v.Authentication != nil {
		c.checkAuthBlock(cl, v.Authentication, vpath("authentication"))
	}
	for _, gname := range sortedKeys(v.Groups) {
		g := v.Groups[gname]
		gpath := func(rest ...any) []cue.Selector { return vpath(append([]any{"groups", gname}, rest...)...) }
		if g.Authentication != nil {
			c.checkAuthBlock(cl, g.Authentication, gpath("authentication"))
		}
		if g.Unauthenticated != nil {
			c.checkOptOut(cl, g, gname, gpath)
			continue
		}
		a, _ := groupAuth(v, g, cl, gname)
		if a == nil {
			if seg := c.repo.segments[g.Segment]; seg != nil && !seg.doc.Protected {
				c.add(SeverityError, "vrrp-unauthenticated", cl.inst, gpath("segment"),
					`add authentication: {keys: [{id: 1, file: "/etc/mwgc/vrrp-1.key"}], activeKey: 1} to the group or to vrrp, or unauthenticated: reason: "..." to the group`,
					"group %s runs on segment %s, which is not protected, without authentication: any host there can forge adverts in a director's name", gname, seg.name)
			}
			continue
		}
		if authMode(a) != plan.AuthEnforce {
			continue
		}
		for _, pname := range sortedKeys(g.ExternalPeers) {
			if !g.ExternalPeers[pname].Authentication {
				c.add(SeverityError, "vrrp-auth-peer", cl.inst, gpath("externalPeers", pname),
					`set authentication: true on the peer if it runs keepalived 2.4.2+ with these keys, or set mode: "permissive" until it does`,
					"group %s enforces authentication, but external peer %s cannot authenticate: each side would drop the other's adverts and both would be Active", gname, pname)
			}
		}
	}
}

// checkOptOut: unauthenticated needs a reason and excludes authentication.
func (c *checker) checkOptOut(cl *cluster, g groupDoc, gname string, gpath func(...any) []cue.Selector) {
	if g.Authentication != nil {
		c.add(SeverityError, "vrrp-auth-conflict", cl.inst, gpath("unauthenticated"),
			"keep one of the two", "group %s has both authentication and unauthenticated", gname)
		return
	}
	reason := strings.TrimSpace(g.Unauthenticated.Reason)
	if reason == "" {
		c.add(SeverityError, "waiver-reason", cl.inst, gpath("unauthenticated", "reason"),
			"write why this group may run without authentication, for the next reader",
			"group %s opts out of authentication without a reason", gname)
		return
	}
	c.add(SeverityNote, "vrrp-unauthenticated-waived", cl.inst, gpath("unauthenticated"),
		"", "group %s runs without authentication: %s", gname, reason)
}

// checkAuthBlock checks one authentication block where it is written.
func (c *checker) checkAuthBlock(cl *cluster, a *authDoc, path []cue.Selector) {
	at := func(rest ...any) []cue.Selector { return append(append([]cue.Selector{}, path...), sel(rest...)...) }
	if len(a.Keys) == 0 {
		c.add(SeverityError, "vrrp-auth-keys", cl.inst, at("keys"),
			`list at least one key file: keys: [{id: 1, file: "/etc/mwgc/vrrp-1.key"}]`, "authentication without a key")
	}
	ids := map[int]bool{}
	for i, k := range a.Keys {
		if ids[k.ID] {
			c.add(SeverityError, "vrrp-auth-keys", cl.inst, at("keys", i, "id"),
				"give every key its own id", "key id %d is listed twice", k.ID)
		}
		ids[k.ID] = true
		if !filepath.IsAbs(k.File) || filepath.Clean(k.File) != k.File {
			c.add(SeverityError, "vrrp-auth-key-path", cl.inst, at("keys", i, "file"),
				fmt.Sprintf("write the absolute path on the directors, e.g. %q; the key itself never goes into the repository", "/etc/mwgc/vrrp-"+fmt.Sprint(k.ID)+".key"),
				"key file %q is not a clean absolute path: the agent would look for it relative to wherever it was started", k.File)
		}
	}
	if len(a.Keys) > 0 && !ids[a.ActiveKey] {
		c.add(SeverityError, "vrrp-auth-keys", cl.inst, at("activeKey"),
			"name one of the listed key ids; to rotate, add the new key everywhere first (docs/security.md)",
			"activeKey %d is not among the keys", a.ActiveKey)
	}
	if a.Window != "" {
		d, err := time.ParseDuration(a.Window)
		if err != nil || d < plan.MinAuthWindow || d > plan.MaxAuthWindow || d%time.Second != 0 {
			c.add(SeverityError, "interval-range", cl.inst, at("window"),
				"use whole seconds from 1s to 300s, or leave it out for max(3 × advertInterval, 5s)",
				"authentication window %q is not whole seconds in 1s..300s", a.Window)
		}
	}
	if m := authMode(a); m != plan.AuthEnforce {
		c.add(SeverityWarning, "vrrp-auth-transitional", cl.inst, at("mode"),
			`finish the roll-out: once every director and peer signs, set mode: "enforce" (docs/security.md)`,
			"authentication mode %s still accepts unsigned adverts: a forged one is taken as real", m)
	}
}

// authPlan is the plan form of a group's authentication.
func authPlan(a *authDoc) *plan.Auth {
	if a == nil {
		return nil
	}
	out := &plan.Auth{Mode: authMode(a), ActiveKey: a.ActiveKey, Keys: []plan.Key{}}
	for _, k := range a.Keys {
		out.Keys = append(out.Keys, plan.Key{ID: k.ID, File: k.File})
	}
	if a.Window != "" {
		out.Window = dur(a.Window)
	}
	return out
}
