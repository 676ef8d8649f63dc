package compiler

import (
	"fmt"
	"strings"
)

// repoGen turns fuzz bytes into a small repository of CUE files: segments,
// clusters, nodes, groups and management drawn from pools of values that
// reach the rules — valid ones, edge cases (a /31, a broadcast address, a
// link-local VIP, priority 255) and the mistakes the messages are written
// for (a prefix on an address, a leading zero, a number for a duration, a
// misspelt field or segment, an invalid name, a file cut short). A few
// dozen bytes describe a repository, so the fuzzer's inputs stay small and
// each one is checked in milliseconds; raw CUE syntax is FuzzLoadBytes's.
type repoGen struct {
	data []byte
	i    int
}

func (g *repoGen) byte() int {
	if g.i >= len(g.data) {
		return 0
	}
	g.i++
	return int(g.data[g.i-1])
}

func (g *repoGen) pick(xs ...string) string { return xs[g.byte()%len(xs)] }

func (g *repoGen) upTo(n int) int { return 1 + g.byte()%n }

var (
	genSegments  = []string{"lan", "wan", "mgmt", "lna"}
	genCIDR4     = []string{"192.0.2.0/24", "192.0.2.0/25", "192.0.2.128/25", "192.0.2.10/31", "198.51.100.0/24", "203.0.113.0/30", ""}
	genCIDR6     = []string{"", "2001:db8::/64", "2001:db8::/48", "2001:db8:1::/64"}
	genAddresses = []string{"192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.130", "192.0.2.10", "192.0.2.255", "198.51.100.11",
		"203.0.113.1", "2001:db8::11", "fe80::11", "192.0.2.11/24", "192.0.2.011"}
	genDurations  = []string{`"1s"`, `"100ms"`, `"10ms"`, `"15ms"`, `"0s"`, `"2h"`, `1`, `"100"`}
	genPriorities = []string{"200", "100", "0", "1", "254", "255", "300"}
	genVIPs       = []string{"192.0.2.10", "192.0.2.11", "192.0.2.129", "192.0.2.255", "2001:db8::10", "fe80::10", "198.51.100.10", "192.0.2.10/24"}
	genNodes      = []string{"a", "b", "c", "scan-1", "N_1"}
)

// files renders the repository: path → content.
func (g *repoGen) files() map[string]string {
	var segs, clusters strings.Builder
	for range g.upTo(3) {
		name := g.pick(genSegments...)
		var cidrs []string
		for _, c := range []string{g.pick(genCIDR4...), g.pick(genCIDR6...)} {
			if c != "" {
				cidrs = append(cidrs, fmt.Sprintf("%q", c))
			}
		}
		fmt.Fprintf(&segs, "segments: %s: {cidrs: [%s], protected: %v", name, strings.Join(cidrs, ", "), g.byte()%3 != 2)
		switch g.byte() % 4 {
		case 1:
			segs.WriteString(`, waiver: reason: "lab"`)
		case 2:
			segs.WriteString(`, waiver: reason: ""`)
		}
		segs.WriteString("}\n")
	}
	for range g.upTo(2) {
		g.cluster(&clusters)
	}
	files := map[string]string{}
	switch g.byte() % 3 {
	case 0: // one file
		files["p/all.cue"] = "package p\n\n" + segs.String() + clusters.String()
	case 1: // two files of one package
		files["p/segments.cue"] = "package p\n\n" + segs.String()
		files["p/clusters.cue"] = "package p\n\n" + clusters.String()
	case 2: // two packages: segments shared from another directory
		files["shared/segments.cue"] = "package shared\n\n" + segs.String()
		files["team/clusters.cue"] = "package team\n\n" + clusters.String()
	}
	if cut := g.byte(); cut >= 240 {
		// A file cut short: a syntax error beside files that parse.
		for _, name := range sortedKeys(files) {
			files[name] = files[name][:len(files[name])*(cut-239)/17]
			break
		}
	}
	return files
}

func (g *repoGen) cluster(b *strings.Builder) {
	fmt.Fprintf(b, "clusters: %q: {\n\tmode: %q\n", g.pick("edge", "web", "Edge_1"), g.pick("ha-proxy", "transparent-router", "explicit-proxy", "bogus"))
	for range g.upTo(4) {
		prio := "priority"
		if g.byte()%16 == 15 {
			prio = "priorty"
		}
		fmt.Fprintf(b, "\tnodes: %q: {%s: %s", g.pick(genNodes...), prio, g.pick(genPriorities...))
		if g.byte()%4 != 3 {
			fmt.Fprintf(b, ", managementIP: %q", g.pick(genAddresses...))
		}
		for range g.upTo(2) {
			fmt.Fprintf(b, ", interfaces: %s: {segment: %q, addresses: [%q]", g.pick("eth0", "eth1", `"eth0/1"`), g.pick(genSegments...), g.pick(genAddresses...))
			if g.byte()%3 == 2 {
				fmt.Fprintf(b, ", linkLocal: %q", g.pick("fe80::11", "fe80::12", "2001:db8::1"))
			}
			b.WriteString("}")
		}
		b.WriteString("}\n")
	}
	if g.byte()%4 != 3 {
		for range g.upTo(2) {
			fmt.Fprintf(b, "\tvrrp: groups: %s: {vrid: %s, segment: %q, vips: [%q], advertInterval: %s, checksum: %q",
				g.pick("g", "v6", "h"), g.pick("1", "51", "255", "0"), g.pick(genSegments...), g.pick(genVIPs...),
				g.pick(genDurations...), g.pick("rfc9568", "pseudo-header"))
			if g.byte()%4 == 3 {
				fmt.Fprintf(b, ", externalPeers: k: {address: %q, priority: %s}", g.pick(genAddresses...), g.pick("1", "100", "200"))
			}
			b.WriteString("}\n")
		}
	}
	if g.byte()%4 != 3 {
		fmt.Fprintf(b, "\tmanagement: {segment: %q, discoveryInterval: %s", g.pick(genSegments...), g.pick(genDurations...))
		switch g.byte() % 4 {
		case 0:
			b.WriteString(`, keyFile: "/etc/mwgc/mgmt.key"`)
		case 1:
			b.WriteString(", unauthenticated: true")
		case 2:
			b.WriteString(`, keyFile: "/k", unauthenticated: true`)
		}
		b.WriteString("}\n")
	}
	b.WriteString("}\n")
}
