package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/internal/headless"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// pageCluster: directors a (150) and b (100) with one IPv4 group, the
// management protocol, and a scanning-only node s; every plan carries the
// notify commands, and the directors the digests compiled for all three.
func pageCluster(hook string) (*Cluster, map[string]*plan.Plan) {
	c := &Cluster{
		Name:       "edge",
		Directors:  []Director{{Node: "a", Priority: 150, Index: 11}, {Node: "b", Priority: 100, Index: 12}},
		Groups:     []Group{{Name: "inside-v4", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.100/24"}}},
		Management: true,
	}
	scanner := netip.MustParseAddr("192.0.2.21")
	plans := map[string]*plan.Plan{}
	for _, d := range c.Directors {
		p := c.Plan(d.Node)
		p.Management.Members = append(p.Management.Members, plan.Member{Name: "s", Address: scanner})
		// Generous: a node starved by a loaded machine must not look down.
		p.Management.DeadAfter = 10
		p.VRRP.Notify = &plan.Notify{Active: []string{hook}, Backup: []string{hook}, Fault: []string{hook}, Timeout: plan.Duration(5 * time.Second)}
		plans[d.Node] = p
	}
	s := *plans["a"]
	s.Node, s.VRRP = "s", nil
	m := *s.Management
	m.Address = scanner
	s.Management = &m
	s.Interfaces = []plan.Interface{{Name: "eth0", Segment: "inside", Addresses: []netip.Prefix{netip.PrefixFrom(scanner, 24)}}}
	plans["s"] = &s
	setRollout(plans)
	return c, plans
}

// setRollout gives the directors the digest of every plan, as mwgc compile
// does.
func setRollout(plans map[string]*plan.Plan) {
	r := &plan.Rollout{}
	for _, node := range []string{"a", "b", "s"} {
		d, _ := plan.ComputeDigest(plans[node])
		r.Nodes = append(r.Nodes, plan.NodeDigest{Node: node, Digest: d})
	}
	for _, node := range []string{"a", "b"} {
		plans[node].Rollout = r
	}
}

// TestNotifyAndClusterPage runs two directors and a scanning node with
// notify commands, then checks what an operator sees: the commands ran
// for each transition with the group, states and reason in their
// environment; the Active's page in headless Chromium lists every node
// with its state and roll-out, follows a plan roll-out to the scanner, and
// the Backup's page points at the Active.
func TestNotifyAndClusterPage(t *testing.T) {
	headless.Require(t)
	lab := netlab.New(t, "a", "b", "s")
	hookLog := filepath.Join(lab.Dir(), "notify.log")
	hook := filepath.Join(lab.Dir(), "hook.sh")
	script := fmt.Sprintf("#!/bin/sh\necho \"$MWGC_NODE $MWGC_GROUP $MWGC_FROM->$MWGC_STATE vips=$MWGC_VIPS reason=$MWGC_REASON\" >> %s\n", hookLog)
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c, plans := pageCluster(hook)
	c.SetupAddresses(lab)
	lab.AddAddr("s", "192.0.2.21/24")
	a := StartAgent(t, lab, plans["a"])
	s := StartAgent(t, lab, plans["s"])
	b := StartAgent(t, lab, plans["b"])
	Eventually(t, 30*time.Second, "a Active, b Backup, every node answering", func() (bool, string) {
		st, err := a.Status()
		if err != nil {
			return false, err.Error()
		}
		up := 0
		if m, ok := st.Management.(map[string]any); ok {
			if counts, ok := m["counts"].(map[string]any); ok {
				up = int(counts["up"].(float64))
			}
		}
		return st.State == "Active" && b.State() == "Backup" && up == 3, fmt.Sprintf("a=%s b=%s up=%d", st.State, b.State(), up)
	})

	// Notify: the commands ran for every transition so far, with the
	// environment the node gave them.
	logged := func() []string {
		data, _ := os.ReadFile(hookLog)
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	Eventually(t, 30*time.Second, "notify commands", func() (bool, string) {
		l := logged()
		return slices.ContainsFunc(l, func(s string) bool {
			return strings.HasPrefix(s, "a inside-v4 Backup->Active vips=192.0.2.100 reason=")
		}) &&
			slices.Contains(l, "b inside-v4 Initialize->Backup vips=192.0.2.100 reason=startup"), strings.Join(l, "\n")
	})

	// The Active's page, rendered by Chromium inside a's namespace.
	pageOpt := func(node string) headless.Options {
		return headless.Options{Prefix: []string{"ip", "netns", "exec", lab.NS(node)}, Width: 1400, Height: 1000}
	}
	// Without the page's own refresh, so that Chromium's look is one load.
	url := "http://" + StatusPort + "/?refresh=0"
	dom := headless.DumpDOM(t, url, pageOpt("a"))
	for _, want := range []string{
		`<span class="state Active" id="state">Active</span>`,
		"This node is the Active director",
		`<tr data-node="a" data-status="Active" data-rollout="yes">`,
		`<tr data-node="b" data-status="up" data-rollout="yes">`,
		`<tr data-node="s" data-status="up" data-rollout="yes">`,
		"Roll-out: 3 of 3 nodes run the plan compiled for them",
		"a (this node)",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the Active's page lacks %s", want)
		}
	}
	shot := filepath.Join(lab.Dir(), "active.png")
	headless.Screenshot(t, url, shot, pageOpt("a"))
	keepScreenshot(t, shot, "cluster-page-active.png")

	// A roll-out: the directors expect a new plan for s (one more address)
	// before s has it; the Active's page shows s behind, then current once
	// its plan lands.
	s2 := *plans["s"]
	s2.Interfaces = []plan.Interface{{Name: "eth0", Segment: "inside", Addresses: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.21/24"), netip.MustParsePrefix("192.0.2.31/24")}}}
	plans["s"] = &s2
	setRollout(plans)
	WritePlan(t, a.PlanPath, plans["a"])
	WritePlan(t, b.PlanPath, plans["b"])
	// (The page as served, polled without a browser: Chromium costs
	// seconds per look.)
	page := func() string { b, _ := a.Get("/"); return string(b) }
	Eventually(t, 30*time.Second, "s shown behind on the Active's page", func() (bool, string) {
		p := page()
		return strings.Contains(p, `<tr data-node="s" data-status="up" data-rollout="no">`) &&
			strings.Contains(p, "2 of 3 nodes run the plan compiled for them; different: s"), rolloutLine(p)
	})
	WritePlan(t, s.PlanPath, plans["s"])
	Eventually(t, 30*time.Second, "s current on the Active's page", func() (bool, string) {
		p := page()
		return strings.Contains(p, `<tr data-node="s" data-status="up" data-rollout="yes">`), rolloutLine(p)
	})

	// The Backup's page names the Active and links to its page.
	dom = headless.DumpDOM(t, url, pageOpt("b"))
	for _, want := range []string{`<span class="state Backup" id="state">Backup</span>`,
		`The Active director is <span id="active-node">a</span>`, `href="http://192.0.2.11:9792/"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the Backup's page lacks %s", want)
		}
	}

	// The Active stops (SIGTERM): b's command runs for its takeover, with
	// the engine's reason.
	if err := a.Proc.Terminate(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, "b's Active command", func() (bool, string) {
		l := logged()
		return slices.ContainsFunc(l, func(s string) bool {
			return strings.HasPrefix(s, "b inside-v4 Backup->Active vips=192.0.2.100 reason=Active 192.0.2.11 left (priority 0)")
		}), strings.Join(l, "\n")
	})
	st, err := b.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Notify == nil || st.Notify.OK < 2 || st.Notify.Failed != 0 {
		t.Errorf("b's notify counters: %+v", st.Notify)
	}
}

func rolloutLine(dom string) string {
	_, rest, _ := strings.Cut(dom, `<p id="rollout">`)
	line, _, _ := strings.Cut(rest, "</p>")
	return line
}

// keepScreenshot copies a screenshot where a person can look at it when
// MWGC_SCREENSHOTS names a directory (the lab's own is removed).
func keepScreenshot(t *testing.T, file, name string) {
	dir := os.Getenv("MWGC_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(file)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if err != nil {
		t.Errorf("keeping the screenshot: %v", err)
	}
}
