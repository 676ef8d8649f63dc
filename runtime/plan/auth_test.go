package plan

import (
	"strings"
	"testing"
	"time"
)

func authPlan() *Plan {
	p := directorPlan()
	p.VRRP.RolloutGrace = Duration(time.Minute)
	for i := range p.VRRP.Groups {
		g := &p.VRRP.Groups[i]
		g.Auth = &Auth{Mode: AuthEnforce, ActiveKey: 2, Keys: []Key{{ID: 1, File: "/etc/mwgc/vrrp-1.key"}, {ID: 2, File: "/etc/mwgc/vrrp-2.key"}}}
		for j := range g.Peers {
			g.Peers[j].Auth = true
		}
	}
	return p
}

// TestAuthPlan: a plan with authentication round-trips and validates; each
// broken field is refused with its path.
func TestAuthPlan(t *testing.T) {
	if _, err := Decode(mustEncode(t, authPlan())); err != nil {
		t.Fatalf("valid plan with auth: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Plan)
		want   string
	}{
		{"mode", func(p *Plan) { p.VRRP.Groups[0].Auth.Mode = "off" }, `vrrp.groups[0].auth.mode: "off"`},
		{"no keys", func(p *Plan) { p.VRRP.Groups[0].Auth.Keys = nil }, "vrrp.groups[0].auth.keys: at least one key"},
		{"duplicate id", func(p *Plan) { p.VRRP.Groups[0].Auth.Keys[1].ID = 1 }, "vrrp.groups[0].auth.keys[1].id: 1 must be unique"},
		{"id 0", func(p *Plan) { p.VRRP.Groups[0].Auth.Keys[0].ID = 0 }, "vrrp.groups[0].auth.keys[0].id: 0"},
		{"relative path", func(p *Plan) { p.VRRP.Groups[0].Auth.Keys[0].File = "vrrp.key" }, `keys[0].file: "vrrp.key" is not a clean absolute path`},
		{"unclean path", func(p *Plan) { p.VRRP.Groups[0].Auth.Keys[0].File = "/etc/../vrrp.key" }, "is not a clean absolute path"},
		{"active key", func(p *Plan) { p.VRRP.Groups[0].Auth.ActiveKey = 3 }, "vrrp.groups[0].auth.activeKey: 3 is not among the keys"},
		{"window", func(p *Plan) { p.VRRP.Groups[1].Auth.Window = Duration(1500 * time.Millisecond) }, "vrrp.groups[1].auth.window: 1.5s"},
		{"peer cannot", func(p *Plan) { p.VRRP.Groups[0].Peers[0].Auth = false }, "vrrp.groups[0].peers[0]: dir-b cannot authenticate"},
		{"grace", func(p *Plan) { p.VRRP.RolloutGrace = Duration(2 * time.Hour) }, "vrrp.rolloutGrace: 2h0m0s is outside"},
	} {
		p := authPlan()
		tc.change(p)
		_, err := Decode(mustEncode(t, p))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A peer that cannot authenticate is fine in the transitional modes.
	p := authPlan()
	p.VRRP.Groups[0].Auth.Mode = AuthPermissive
	p.VRRP.Groups[0].Peers[0].Auth = false
	if _, err := Decode(mustEncode(t, p)); err != nil {
		t.Fatalf("permissive with a peer that cannot sign: %v", err)
	}
}
