package mgmt

import (
	"net"
	"net/netip"
	"time"

	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/plan"
)

// The distribution report (docs/distribution.md): a node whose plan
// distributes traffic tells the director, in its version-2 answers, the
// MAC of its interface on the distribution segment and whether its proxy
// port accepts a connection. The node asks for the check every
// ReportEvery; the agent runs CheckReport off its loop (it may wait for a
// connection) and hands the result back.

// ReportTarget is what the node checks; zero when it takes no share.
type ReportTarget struct {
	ifname string
	proxy  netip.AddrPort
}

// IsZero reports whether there is nothing to check.
func (t ReportTarget) IsZero() bool { return t == ReportTarget{} }

// ReportTargetOf is what a node running p checks.
func ReportTargetOf(p *plan.Plan) ReportTarget {
	d := p.Distribution
	if d == nil || !d.Scans {
		return ReportTarget{}
	}
	for _, in := range p.Interfaces {
		if in.Name != d.Interface {
			continue
		}
		for _, a := range in.Addresses {
			if a.Addr().Is4() {
				return ReportTarget{ifname: in.Name, proxy: netip.AddrPortFrom(a.Addr(), uint16(d.ProxyPort))}
			}
		}
	}
	return ReportTarget{}
}

// CheckReport reads the interface's MAC and tries the proxy port once,
// waiting at most timeout.
func CheckReport(t ReportTarget, timeout time.Duration) wire.Report {
	var r wire.Report
	if t.ifname == "" {
		return r
	}
	if in, err := net.InterfaceByName(t.ifname); err == nil && len(in.HardwareAddr) == 6 {
		copy(r.MAC[:], in.HardwareAddr)
	}
	c, err := net.DialTimeout("tcp", t.proxy.String(), timeout)
	if err == nil {
		c.Close()
		r.Serving = true
	}
	return r
}

// ReportEvery is how often the proxy port is checked: every discovery
// interval, at most every second, so a closed proxy leaves the mapping
// within an interval or a second plus the next answer. The check waits at
// most ReportTimeout.
func ReportEvery(m *plan.Management) time.Duration {
	return min(m.DiscoveryInterval.D(), time.Second)
}

// ReportTimeout bounds one check of the proxy port.
func ReportTimeout(m *plan.Management) time.Duration {
	return min(ReportEvery(m)/2, 500*time.Millisecond)
}
