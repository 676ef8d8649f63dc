package agent

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

// checkPlan is testPlan with the management protocol on eth0, its key
// file and table file in dir.
func checkPlan(t *testing.T, dir string) *plan.Plan {
	p := testPlan()
	p.Management = &plan.Management{
		Interface: "eth0", Address: self, Broadcast: netip.MustParseAddr("192.0.2.255"), Port: 9793,
		DiscoveryInterval: plan.Duration(time.Second), DeadAfter: 3,
		KeyFile: writeKey(t, dir, bytes.Repeat([]byte{0x42}, 32)), TableFile: filepath.Join(dir, "scanners.json"),
		Members: []plan.Member{{Name: "a", Address: self, Director: true}, {Name: "b", Address: peer, Director: true}},
	}
	return p
}

func encoded(t *testing.T, p *plan.Plan) []byte {
	b, err := plan.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Check makes the checks start-up makes, and touches nothing on the host.
func TestCheckPassesAndTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	fn := newFakeNet()
	rep, err := Check(encoded(t, checkPlan(t, dir)), fn)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	text := rep.String()
	for _, want := range []string{"interface eth0 exists", "key file " + filepath.Join(dir, "mgmt.key"), "table file directory " + dir, "not checked"} {
		if !strings.Contains(text, want) {
			t.Errorf("report does not mention %q:\n%s", want, text)
		}
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if len(fn.calls) != 0 {
		t.Errorf("Check changed the host: %v", fn.calls)
	}
}

// A group with a virtual MAC: its macvlan is made only by a start, so the
// report neither claims it exists nor makes it.
func TestCheckVirtualMAC(t *testing.T) {
	p := testPlan()
	p.VRRP.Groups[0].VMACInterface = "vmac4-51"
	p.Digest, _ = plan.ComputeDigest(p)
	fn := newFakeNet()
	rep, err := Check(encoded(t, p), fn)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if slices.Contains(rep.Interfaces, "vmac4-51") {
		t.Errorf("report says the macvlan exists: %v", rep.Interfaces)
	}
	if text := rep.String(); !strings.Contains(text, "virtual MAC interface vmac4-51 is not made") {
		t.Errorf("report does not say the macvlan is not made:\n%s", text)
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if len(fn.calls) != 0 {
		t.Errorf("Check changed the host: %v", fn.calls)
	}
}

func TestCheckFindsWhatStartUpWouldRefuse(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, dir string, p *plan.Plan, fn *fakeNet)
		want   string
	}{
		{"key others can read", func(t *testing.T, dir string, p *plan.Plan, fn *fakeNet) {
			os.Chmod(p.Management.KeyFile, 0o644)
		}, "chmod 600"},
		{"missing key", func(t *testing.T, dir string, p *plan.Plan, fn *fakeNet) {
			p.Management.KeyFile = filepath.Join(dir, "absent.key")
		}, "absent.key"},
		{"table directory missing", func(t *testing.T, dir string, p *plan.Plan, fn *fakeNet) {
			p.Management.TableFile = filepath.Join(dir, "nowhere", "scanners.json")
		}, "scanners.json: directory "},
		{"interface missing", func(t *testing.T, dir string, p *plan.Plan, fn *fakeNet) {
			fn.links = slices.DeleteFunc(fn.links, func(l LinkState) bool { return l.Name == "eth0" })
		}, "interface eth0 (VRRP group inside-v4) does not exist on this host"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fn := newFakeNet()
			p := checkPlan(t, dir)
			c.change(t, dir, p, fn)
			_, err := Check(encoded(t, p), fn)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Check = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}
