package mgmt

import (
	"net"
	"net/netip"
	"time"

	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/plan"
)

// The distribution report (docs/distribution.md): a node whose plan
// distributes traffic tells the director, in its version-2 answers, the
// MAC of its interface on the distribution segment and whether its proxy
// port accepts a connection. Checked here, off the protocol's lock, every
// reportEvery.

// reportTarget is what the node checks; zero when it takes no share.
type reportTarget struct {
	ifname string
	proxy  netip.AddrPort
}

func reportTargetOf(p *plan.Plan) reportTarget {
	d := p.Distribution
	if d == nil || !d.Scans {
		return reportTarget{}
	}
	for _, in := range p.Interfaces {
		if in.Name != d.Interface {
			continue
		}
		for _, a := range in.Addresses {
			if a.Addr().Is4() {
				return reportTarget{ifname: in.Name, proxy: netip.AddrPortFrom(a.Addr(), uint16(d.ProxyPort))}
			}
		}
	}
	return reportTarget{}
}

// checkReport reads the interface's MAC and tries the proxy port once.
func checkReport(t reportTarget, timeout time.Duration) wire.Report {
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

// reportEvery is how often the proxy port is checked: every discovery
// interval, at most every second, so a closed proxy leaves the mapping
// within an interval or a second plus the next answer.
func (s *Service) reportEvery() time.Duration {
	return min(s.mgmt.DiscoveryInterval.D(), time.Second)
}

// reportLoop checks and hands the result to the engine until Close.
func (s *Service) reportLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		target, every := s.report, s.reportEvery()
		s.mu.Unlock()
		r := checkReport(target, min(every/2, 500*time.Millisecond))
		s.mu.Lock()
		if !s.closed {
			s.stepLocked(engine.SetReport{Report: r})
		}
		s.mu.Unlock()
		select {
		case <-s.done:
			return
		case <-time.After(every):
		}
	}
}
