package plandiff

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/mwgc/mwgc/runtime/plan"
)

// distribution reports changes of traffic distribution (runtime/distrib):
// which client connections to the VIPs the Active spreads, and to whom.
// Clients are mapped statelessly by a hash of their address; a client
// that moves to another node loses its open connections.
func (d *differ) distribution() {
	bd, ad := d.b.dist, d.a.dist
	add := func(op Op, detail, effect string) {
		d.add(Change{Op: op, Subject: "distribution", Detail: detail, Effect: effect, Wire: true})
	}
	switch {
	case bd == nil && ad == nil:
		return
	case bd == nil:
		add(OpAdd, distSummary(ad), "the Active spreads new client connections to the VIPs over the nodes that report their proxy port serving; each node accepts what is forwarded to it once its plan lands")
		return
	case ad == nil:
		add(OpRemove, distSummary(bd), "the Active stops spreading: its own proxy serves every client of the VIPs, and connections open on other nodes break")
		return
	}
	if bd.Mode != ad.Mode {
		add(OpUpdate, fmt.Sprintf("mode %s → %s", bd.Mode, ad.Mode), "the Active forwards in the new manner once its plan lands (l2: the node's MAC; nat: destination and source NAT); connections open on other nodes break")
	}
	if !slices.Equal(bd.VIPs, ad.VIPs) || !slices.Equal(bd.Ports, ad.Ports) || bd.ProxyPort != ad.ProxyPort {
		add(OpUpdate, fmt.Sprintf("%s → %s", distTraffic(bd), distTraffic(ad)),
			"the Active forwards the new addresses and ports once its plan lands; a node accepts them only once its own plan has landed, so roll out the nodes first")
	}
	if bd.DirectorsScan != ad.DirectorsScan {
		e := "the directors no longer take a share: their clients move to the other nodes (only theirs move)"
		if ad.DirectorsScan {
			e = "the directors take a share too: the clients of the slots they rank first move to them (about 1/N)"
		}
		add(OpUpdate, "directorsScan "+onOff(bd.DirectorsScan)+" → "+onOff(ad.DirectorsScan), e)
	}
	if bd.LoadWeighting != ad.LoadWeighting {
		add(OpUpdate, "loadWeighting "+onOff(bd.LoadWeighting)+" → "+onOff(ad.LoadWeighting),
			"clients are spread by the nodes' reported load: some move now, and more whenever loads change")
	}
	if bd.Slots != ad.Slots || bd.Seed != ad.Seed {
		add(OpUpdate, fmt.Sprintf("slots %d → %d, seed %d → %d", bd.Slots, ad.Slots, bd.Seed, ad.Seed),
			"the hash table is rebuilt: most clients move to another node at once")
	}
	d.distributionNodes(bd, ad)
}

func (d *differ) distributionNodes(bd, ad *plan.Distribution) {
	names := func(ns []plan.DistributionNode) map[string]plan.DistributionNode {
		m := map[string]plan.DistributionNode{}
		for _, n := range ns {
			m[n.Name] = n
		}
		return m
	}
	bm, am := names(bd.Nodes), names(ad.Nodes)
	n := len(am)
	for _, name := range unionKeys(bm, am) {
		bn, bok := bm[name]
		an, aok := am[name]
		switch {
		case !bok:
			d.add(Change{Op: OpAdd, Subject: "distribution node " + name, Detail: an.Address.String(), Wire: true,
				Effect: fmt.Sprintf("takes the slots it ranks first (about 1/%d of the clients; only those move) once it reports its proxy port serving", n)})
		case !aok:
			d.add(Change{Op: OpRemove, Subject: "distribution node " + name, Detail: bn.Address.String(), Wire: true,
				Effect: "its clients move to the other nodes (only theirs move); their open connections break"})
		case bn.Address != an.Address:
			d.add(Change{Op: OpUpdate, Subject: "distribution node " + name, Detail: fmt.Sprintf("address %s → %s", bn.Address, an.Address), Wire: true,
				Effect: "the Active forwards its share to the new address once its plan lands"})
		}
	}
}

func distSummary(dd *plan.Distribution) string {
	return fmt.Sprintf("mode %s, %s, %d nodes may take a share", dd.Mode, distTraffic(dd), len(dd.Nodes))
}

func distTraffic(dd *plan.Distribution) string {
	var ports []string
	for _, p := range dd.Ports {
		ports = append(ports, fmt.Sprint(p))
	}
	return fmt.Sprintf("%s ports %s to proxy port %d", addrList(dd.VIPs), strings.Join(ports, ", "), dd.ProxyPort)
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
