package mgmt

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

func TestCheckReport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ReportTarget{ifname: "lo", proxy: netip.MustParseAddrPort(ln.Addr().String())}
	if r := CheckReport(target, time.Second); !r.Serving || r.MAC != [6]byte{} {
		t.Fatalf("listening proxy: %+v (lo has no MAC)", r)
	}
	ln.Close()
	if r := CheckReport(target, time.Second); r.Serving {
		t.Fatalf("closed proxy reported serving: %+v", r)
	}
	if r := CheckReport(ReportTarget{}, time.Second); r.Serving {
		t.Fatalf("no target: %+v", r)
	}
}

func TestReportTargetOf(t *testing.T) {
	p := &plan.Plan{
		Interfaces:   []plan.Interface{{Name: "eth1", Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8::5/64"), netip.MustParsePrefix("192.0.2.5/24")}}},
		Distribution: &plan.Distribution{Interface: "eth1", ProxyPort: 9090, Scans: true},
	}
	if got := ReportTargetOf(p); got.ifname != "eth1" || got.proxy.String() != "192.0.2.5:9090" {
		t.Fatalf("target %+v", got)
	}
	p.Distribution.Scans = false
	if got := ReportTargetOf(p); got != (ReportTarget{}) {
		t.Fatalf("a node taking no share checks nothing: %+v", got)
	}
}
