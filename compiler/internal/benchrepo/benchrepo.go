// Package benchrepo generates valid mwgc repositories of a given size for
// benchmarks.
//
// Clusters have NodesPerCluster nodes each (2 directors, the rest
// scanners), one file and one segment per cluster, so the cost of checking
// them should grow linearly with the node count. Addresses come from
// 198.18.0.0/15, the range RFC 2544 reserves for benchmarks: the
// documentation ranges hold too few IPv4 addresses for 10,000 unique
// management IPs, and these files never reach a network.
package benchrepo

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// NodesPerCluster is the size of every generated cluster.
const NodesPerCluster = 10

// Generate writes n nodes (rounded down to whole clusters) as one file per
// cluster into dir and returns the number of files.
func Generate(dir string, n int) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	base := netip.MustParseAddr("198.18.0.0")
	clusters := n / NodesPerCluster
	for c := range clusters {
		// One /27 per cluster.
		net := offset(base, c*32)
		host := func(i int) string { return offset(net, i).String() }
		seg := fmt.Sprintf("seg-%05d", c)
		var b strings.Builder
		fmt.Fprintf(&b, "package clusters\n\nsegments: %q: {\n\tcidrs: [\"%s/27\"]\n\tprotected: true\n}\n\n", seg, net)
		fmt.Fprintf(&b, "clusters: \"c-%05d\": {\n\tmode: \"ha-proxy\"\n\tnodes: {\n", c)
		for i := 1; i <= NodesPerCluster; i++ {
			prio := 0
			switch i {
			case 1:
				prio = 200
			case 2:
				prio = 100
			}
			fmt.Fprintf(&b, "\t\t\"n-%02d\": {\n\t\t\tpriority: %d\n\t\t\tmanagementIP: %q\n\t\t\tinterfaces: eth0: {segment: %q, addresses: [%q]}\n\t\t}\n", i, prio, host(i+1), seg, host(i+1))
		}
		fmt.Fprintf(&b, "\t}\n\tvrrp: groups: proxy: {\n\t\tvrid: 51\n\t\tsegment: %q\n\t\tvips: [%q]\n\t\tadvertInterval: \"100ms\"\n\t}\n", seg, host(1))
		fmt.Fprintf(&b, "\tmanagement: {\n\t\tsegment: %q\n\t\tkeyFile: \"/etc/mwgc/mgmt.key\"\n\t}\n}\n", seg)
		name := fmt.Sprintf("c-%05d.cue", c)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			return 0, err
		}
	}
	return clusters, nil
}

func offset(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
