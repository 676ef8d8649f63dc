package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// directorPlan is a valid plan of an IPv4+IPv6 transparent-router director.
func directorPlan() *Plan {
	return &Plan{
		APIVersion: APIVersion,
		Cluster:    "edge",
		Node:       "dir-a",
		Mode:       ModeTransparentRouter,
		Interfaces: []Interface{{
			Name:      "eth0",
			Segment:   "inside",
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.11/24"), netip.MustParsePrefix("2001:db8::11/64")},
			LinkLocal: netip.MustParseAddr("fe80::11"),
		}},
		VRRP: &VRRP{
			Priority: 200,
			Announce: Announce{Count: 5, Interval: Duration(10 * time.Millisecond), RepeatAfter: Duration(5 * time.Second)},
			Groups: []Group{{
				Name: "inside-v4", VRID: 51, Interface: "eth0", Family: FamilyIPv4, Version: 3,
				AdvertInterval: Duration(100 * time.Millisecond), Preempt: true,
				Checksum: ChecksumPseudoHeader, Source: netip.MustParseAddr("192.0.2.11"),
				VIPs:  []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
				Peers: []Peer{{Name: "dir-b", Address: netip.MustParseAddr("192.0.2.12"), Priority: 100}},
			}, {
				Name: "inside-v6", VRID: 51, Interface: "eth0", Family: FamilyIPv6, Version: 3,
				AdvertInterval: Duration(100 * time.Millisecond), Preempt: true,
				Source: netip.MustParseAddr("fe80::11"),
				VIPs:   []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")},
				Peers:  []Peer{{Name: "dir-b", Address: netip.MustParseAddr("fe80::12"), Priority: 100}},
			}},
		},
		Management: &Management{
			Interface: "eth0", Address: netip.MustParseAddr("192.0.2.11"),
			Broadcast: netip.MustParseAddr("192.0.2.255"), Port: 9793,
			DiscoveryInterval: Duration(time.Second), DeadAfter: 3, KeyFile: "/etc/mwgc/mgmt.key",
			Members: []Member{
				{Name: "dir-a", Address: netip.MustParseAddr("192.0.2.11"), Director: true},
				{Name: "dir-b", Address: netip.MustParseAddr("192.0.2.12"), Director: true},
				{Name: "scan-1", Address: netip.MustParseAddr("192.0.2.21")},
			},
		},
	}
}

func mustEncode(t testing.TB, p *Plan) []byte {
	t.Helper()
	b, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	want := directorPlan()
	data := mustEncode(t, want)
	got, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode of an encoded valid plan: %v", err)
	}
	want.Digest = got.Digest
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("round trip changed the plan (-want +got):\n%s", diff)
	}
	if again := mustEncode(t, got); !bytes.Equal(again, data) {
		t.Errorf("encoding is not canonical:\n%s\nvs\n%s", data, again)
	}
	if !strings.HasPrefix(got.Digest, "sha256:") || len(got.Digest) != len("sha256:")+64 {
		t.Errorf("digest %q is not sha256:<64 hex>", got.Digest)
	}
}

func TestGoldenPlanFile(t *testing.T) {
	path := filepath.Join("testdata", "director.json")
	data := mustEncode(t, directorPlan())
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create)", err)
	}
	if diff := cmp.Diff(string(want), string(data)); diff != "" {
		t.Errorf("plan encoding changed; a format change needs a new apiVersion (-golden +now):\n%s", diff)
	}
}

// TestDecodeRefuses lists the kinds of bad input an agent must refuse, each
// with the words an operator needs to find the fault.
func TestDecodeRefuses(t *testing.T) {
	good := string(mustEncode(t, directorPlan()))
	// reencode re-digests after a change, so only the intended fault remains.
	reencode := func(change func(p *Plan)) string {
		p := directorPlan()
		change(p)
		c := *p
		d, _ := ComputeDigest(&c)
		c.Digest = d
		b, _ := json.MarshalIndent(&c, "", "  ")
		return string(b)
	}
	tests := []struct {
		name, input string
		wantIn      []string
	}{
		{"empty", "", []string{"EOF"}},
		{"not json", "apiVersion: x", []string{"plan:1:1", "invalid character"}},
		{"unknown field", strings.Replace(good, `"cluster"`, `"clustre": "x", "cluster"`, 1), []string{`unknown field "clustre"`}},
		{"wrong type", strings.Replace(good, `"priority": 200`, `"priority": "high"`, 1), []string{"plan:", "vrrp.priority", "string"}},
		{"bare number duration", strings.Replace(good, `"advertInterval": "100ms"`, `"advertInterval": 100`, 1), []string{`such as "100ms"`}},
		{"trailing data", good + "{}", []string{"after the JSON object"}},
		{"unknown version", strings.Replace(good, APIVersion, "mwgc.dev/plan/v9", 1), []string{"mwgc.dev/plan/v9", "not supported"}},
		{"edited after compile", strings.Replace(good, `"192.0.2.1/24"`, `"192.0.2.2/24"`, 1), []string{"digest", "changed after compiling"}},
		{"priority range", reencode(func(p *Plan) { p.VRRP.Priority = 256 }), []string{"vrrp.priority: 256"}},
		{"vrid zero", reencode(func(p *Plan) { p.VRRP.Groups[0].VRID = 0 }), []string{"vrrp.groups[0].vrid: 0"}},
		{"interval not centiseconds", reencode(func(p *Plan) { p.VRRP.Groups[0].AdvertInterval = Duration(105 * time.Millisecond) }), []string{"advertInterval: 105ms"}},
		{"interval zero", reencode(func(p *Plan) { p.VRRP.Groups[0].AdvertInterval = 0 }), []string{"advertInterval: 0s"}},
		{"vip family", reencode(func(p *Plan) { p.VRRP.Groups[1].VIPs[0] = netip.MustParsePrefix("192.0.2.9/24") }), []string{"vrrp.groups[1].vips[0]", "ipv6"}},
		{"vip is own address", reencode(func(p *Plan) { p.VRRP.Groups[0].VIPs[0] = netip.MustParsePrefix("192.0.2.11/24") }), []string{"owner (priority 255)"}},
		{"two link-local VIPs", reencode(func(p *Plan) {
			p.VRRP.Groups[1].VIPs = append(p.VRRP.Groups[1].VIPs, netip.MustParsePrefix("fe80::100/64"), netip.MustParsePrefix("fe80::101/64"))
		}), []string{"vrrp.groups[1].vips[2]", "second link-local"}},
		{"ipv6 source not link-local", reencode(func(p *Plan) { p.VRRP.Groups[1].Source = netip.MustParseAddr("2001:db8::11") }), []string{"groups[1].source", "link-local"}},
		{"unknown interface", reencode(func(p *Plan) { p.VRRP.Groups[0].Interface = "eth9" }), []string{`"eth9" is not among`}},
		{"key missing", reencode(func(p *Plan) { p.Management.KeyFile = "" }), []string{"keyFile: required"}},
		{"self not member", reencode(func(p *Plan) { p.Management.Members = p.Management.Members[1:] }), []string{"this node is not listed"}},
		{"broadcast is a member", reencode(func(p *Plan) { p.Management.Broadcast = netip.MustParseAddr("192.0.2.12") }), []string{"management.broadcast: 192.0.2.12", "dir-b"}},
		{"director not marked", reencode(func(p *Plan) { p.Management.Members[0].Director = false }), []string{"members[0].director: false", "runs VRRP"}},
		{"explicit proxy with vrrp", reencode(func(p *Plan) { p.Mode = ModeExplicitProxy }), []string{"uses neither"}},
		{"reannounce count", reencode(func(p *Plan) { p.VRRP.Announce.Reannounce = &Reannounce{Count: 101, Holdoff: Duration(time.Second)} }),
			[]string{"reannounce.count: 101"}},
		{"reannounce holdoff", reencode(func(p *Plan) { p.VRRP.Announce.Reannounce = &Reannounce{Count: 3} }),
			[]string{"reannounce.holdoff: 0s is outside 100ms..1m"}},
		{"reannounce refresh", reencode(func(p *Plan) {
			p.VRRP.Announce.Reannounce = &Reannounce{Count: 3, Holdoff: Duration(time.Second), Refresh: Duration(500 * time.Millisecond)}
		}), []string{"reannounce.refresh: 500ms is neither 0s nor within 1s..1h"}},
		{"vmac name too long", reencode(func(p *Plan) { p.VRRP.Groups[0].VMACInterface = "vmac4-51-eth0.1234" }),
			[]string{"groups[0].vmacInterface", "1..15 bytes"}},
		{"vmac name with a slash", reencode(func(p *Plan) { p.VRRP.Groups[0].VMACInterface = "vmac/51" }),
			[]string{"groups[0].vmacInterface"}},
		{"vmac name of a plan interface", reencode(func(p *Plan) { p.VRRP.Groups[0].VMACInterface = "eth0" }),
			[]string{`"eth0" is already the name`}},
		{"vmac name twice", reencode(func(p *Plan) { p.VRRP.Groups[0].VMACInterface, p.VRRP.Groups[1].VMACInterface = "vmac51", "vmac51" }),
			[]string{`groups[1].vmacInterface: "vmac51" is already`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode([]byte(tt.input))
			if err == nil {
				t.Fatalf("Decode accepted bad input; plan %+v", p)
			}
			if p != nil {
				t.Errorf("Decode returned a plan along with error %v", err)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// withFailover sets the re-announcement section and a virtual MAC on
// every group.
func withFailover(p *Plan) *Plan {
	p.VRRP.Announce.Reannounce = &Reannounce{Count: 2, Holdoff: Duration(500 * time.Millisecond), Refresh: Duration(time.Minute)}
	for i := range p.VRRP.Groups {
		p.VRRP.Groups[i].VMACInterface = fmt.Sprintf("vmac%d-51", 4+2*i)
	}
	return p
}

// The re-announce and virtual MAC fields are optional: a plan from an
// older compiler has neither, and a plan with them round-trips.
func TestReannounceAndVirtualMACRoundTrip(t *testing.T) {
	want := directorPlan()
	want.VRRP.Announce.Reannounce = &Reannounce{Count: 2, Holdoff: Duration(500 * time.Millisecond), Refresh: Duration(time.Minute)}
	want.VRRP.Groups[0].VMACInterface = "vmac4-51"
	want.VRRP.Groups[1].VMACInterface = "vmac6-51"
	data := mustEncode(t, want)
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.VRRP.Announce, got.VRRP.Announce); diff != "" {
		t.Errorf("announce (-want +got):\n%s", diff)
	}
	if got.VRRP.Groups[0].VMACInterface != "vmac4-51" || got.VRRP.Groups[1].VMACInterface != "vmac6-51" {
		t.Errorf("vmac interfaces %q %q", got.VRRP.Groups[0].VMACInterface, got.VRRP.Groups[1].VMACInterface)
	}
	if old := string(mustEncode(t, directorPlan())); strings.Contains(old, "reannounce") || strings.Contains(old, "vmacInterface") {
		t.Errorf("unset fields are encoded:\n%s", old)
	}
}

// An IPv6 group may carry one link-local VIP (RFC 9568 §5.2.9): the plan
// admits it, and the engine lists it first in adverts (erratum 8300).
func TestLinkLocalVIP(t *testing.T) {
	p := directorPlan()
	p.VRRP.Groups[1].VIPs = append(p.VRRP.Groups[1].VIPs, netip.MustParsePrefix("fe80::100/64"))
	p.Digest, _ = ComputeDigest(p)
	if err := p.Validate(); err != nil {
		t.Fatalf("a link-local VIP in an IPv6 group was refused: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	p := directorPlan()
	p.VRRP.Priority = 0
	p.VRRP.Groups[0].VRID = 300
	p.Management.Port = 0
	p.Digest, _ = ComputeDigest(p)
	err := p.Validate()
	if err == nil {
		t.Fatal("Validate accepted three faults")
	}
	for _, w := range []string{"vrrp.priority", "vrrp.groups[0].vrid", "management.port"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not report %s:\n%v", w, err)
		}
	}
}

func TestReadFileNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(path, []byte(`{"apiVersion": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("ReadFile error %v does not name %s", err, path)
	}
}

// FuzzDecode: arbitrary bytes give an error or a plan that re-encodes to
// something that decodes to the same plan; never a panic.
func FuzzDecode(f *testing.F) {
	f.Add(mustEncode(f, directorPlan()))
	f.Add(mustEncode(f, withRollout(directorPlan())))
	f.Add(mustEncode(f, withFailover(directorPlan())))
	f.Add(mustEncode(f, unicastPlan()))
	f.Add([]byte(`{"apiVersion":"mwgc.dev/plan/v1"}`))
	f.Add([]byte(`{"vrrp":{"groups":[{}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Encode(p)
		if err != nil {
			t.Fatalf("valid plan does not encode: %v", err)
		}
		q, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded plan refused: %v", err)
		}
		if q.Digest != p.Digest {
			t.Fatalf("digest changed over a round trip: %s vs %s", p.Digest, q.Digest)
		}
	})
}
