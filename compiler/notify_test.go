package compiler

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const notifyCluster = `package clusters

segments: proxy: {cidrs: ["192.0.2.0/24"], protected: true}

clusters: web: {
	mode: "ha-proxy"
	nodes: {
		"dir-a": {priority: 200, managementIP: "192.0.2.11", interfaces: eth0: {segment: "proxy", addresses: ["192.0.2.11"]}}
		"dir-b": {priority: 100, managementIP: "192.0.2.12", interfaces: eth0: {segment: "proxy", addresses: ["192.0.2.12"]}}
		"scan-1": {managementIP: "192.0.2.21", interfaces: eth0: {segment: "proxy", addresses: ["192.0.2.21"]}}
	}
	vrrp: groups: proxy: {vrid: 51, segment: "proxy", vips: ["192.0.2.100"]}
	vrrp: notify: NOTIFY
	management: {segment: "proxy", keyFile: "/etc/mwgc/mgmt.key"}
}
`

func loadNotify(t *testing.T, notify string) *Result {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.cue"), []byte(strings.Replace(notifyCluster, "NOTIFY", notify, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestNotify: the cluster's notify commands reach every director's plan
// with the default timeout, and scanning nodes get none.
func TestNotify(t *testing.T) {
	res := loadNotify(t, `{active: ["/usr/local/bin/page", "--up"], fault: ["/usr/local/bin/page", "--fault"]}`)
	plans, err := res.Plans()
	if err != nil {
		t.Fatalf("%v: %v", err, res.Findings)
	}
	for _, np := range plans {
		if np.Plan.VRRP == nil {
			continue
		}
		n := np.Plan.VRRP.Notify
		if n == nil || !slices.Equal(n.Active, []string{"/usr/local/bin/page", "--up"}) || n.Backup != nil || n.Timeout.D() != 10*time.Second {
			t.Errorf("%s: notify %+v", np.Node, n)
		}
	}
}

func TestNotifyRefused(t *testing.T) {
	for notify, rule := range map[string]string{
		`{active: ["page.sh"]}`:                    "schema",
		`{backup: ["/bin/true"], timeout: "0.5s"}`: "interval-range",
		`{backup: ["/bin/true"], timeout: "1h"}`:   "interval-range",
	} {
		res := loadNotify(t, notify)
		var rules []string
		for _, f := range res.Findings {
			rules = append(rules, f.Rule)
		}
		if !slices.Contains(rules, rule) {
			t.Errorf("%s: findings %v, want %s", notify, res.Findings, rule)
		}
	}
}
