// Package vrrpplan turns a plan's VRRP group into the engine's
// configuration: the group's settings, the plan as election policy (the
// peers' planned priorities, the roll-out grace) and the authentication
// keys read from the files the plan names. The agent reads the key files
// (runtime/keyfile); this package only maps.
package vrrpplan

import (
	"fmt"
	"slices"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// Keys gives the key read from each key file path.
type Keys map[string][]byte

// KeyFiles lists every key file the plan's VRRP groups name, each once,
// sorted.
func KeyFiles(p *plan.Plan) []string {
	if p.VRRP == nil {
		return nil
	}
	var out []string
	for _, g := range p.VRRP.Groups {
		if g.Auth == nil {
			continue
		}
		for _, k := range g.Auth.Keys {
			if !slices.Contains(out, k.File) {
				out = append(out, k.File)
			}
		}
	}
	slices.Sort(out)
	return out
}

var modes = map[string]auth.Mode{
	plan.AuthEnforce:     auth.ModeEnforce,
	plan.AuthPermissive:  auth.ModePermissive,
	plan.AuthReceiveOnly: auth.ModeReceiveOnly,
}

// Config is the engine configuration of group g of plan p. keys must hold
// every file of g's authentication (KeyFiles).
func Config(p *plan.Plan, g *plan.Group, keys Keys) (vrrp.Config, error) {
	cfg := vrrp.Config{
		VRID:           uint8(g.VRID),
		Priority:       uint8(p.VRRP.Priority),
		Source:         g.Source,
		AdvertInterval: g.AdvertInterval.D(),
		Preempt:        g.Preempt,
		PreemptDelay:   g.PreemptDelay.D(),
		AcceptMode:     g.AcceptMode,
		VIPs:           slices.Clone(g.VIPs),
		PolicyGrace:    p.VRRP.RolloutGrace.D(),
	}
	for _, peer := range g.Peers {
		cfg.Peers = append(cfg.Peers, peer.Address)
		cfg.Policy = append(cfg.Policy, vrrp.PeerPolicy{Addr: peer.Address, Priority: uint8(peer.Priority)})
	}
	ra := plan.DefaultReannounce
	if p.VRRP.Announce.Reannounce != nil {
		ra = *p.VRRP.Announce.Reannounce
	}
	cfg.Reannounce = vrrp.Reannounce{Disabled: ra.Count == 0, Holdoff: ra.Holdoff.D(), Refresh: ra.Refresh.D()}
	cfg.Checksum = ChecksumForm(g)
	if g.Unicast != nil {
		// Unicast VRRP: the caller sends a copy to every peer.
		cfg.Unicast, cfg.MinTTL = true, uint8(g.Unicast.MinTTL)
	}
	if g.Auth != nil {
		a := &auth.Config{Mode: modes[g.Auth.Mode], ActiveKey: uint8(g.Auth.ActiveKey), Window: g.Auth.Window.D()}
		for _, k := range g.Auth.Keys {
			secret, ok := keys[k.File]
			if !ok {
				return vrrp.Config{}, fmt.Errorf("vrrp group %s: key %d: file %s was not read", g.Name, k.ID, k.File)
			}
			a.Keys = append(a.Keys, auth.Key{ID: uint8(k.ID), Secret: secret})
		}
		cfg.Auth = a
	}
	return cfg, nil
}

// ChecksumForm is the checksum form group g sends: IPv6's pseudo-header,
// or the plan's IPv4 form.
func ChecksumForm(g *plan.Group) vrrp.ChecksumForm {
	switch {
	case g.Family == plan.FamilyIPv6:
		return vrrp.ChecksumIPv6
	case g.Checksum == plan.ChecksumRFC9568:
		return vrrp.ChecksumRFC9568
	}
	return vrrp.ChecksumPseudoHeader
}
