package compiler

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mutations are edits of examples/ha-proxy/cluster.cue, each with the
// replacements to choose from. They stay close to what people write, so
// the mix reaches the semantic rules that byte-level fuzzing rarely does.
var mutations = []struct {
	old  string
	news []string
}{
	{`priority:     200`, []string{`priority: 0`, `priority: 1`, `priority: 100`, `priority: 254`, `priority: 255`}},
	{`priority:     100`, []string{`priority: 0`, `priority: 200`, `priority: 255`}},
	{`vips:           ["192.0.2.130"]`, []string{`vips: ["192.0.2.131"]`, `vips: ["192.0.2.128"]`, `vips: ["192.0.2.255"]`, `vips: ["fe80::1"]`, `vips: ["2001:db8::1"]`, `vips: ["192.0.2.130", "192.0.2.130"]`}},
	{`vrid:           51`, []string{`vrid: 1`, `vrid: 255`, `vrid: 0`}},
	{`protected: true`, []string{`protected: false`, "protected: false\n\t\twaiver: reason: \"lab\"", "protected: false\n\t\twaiver: reason: \"\""}},
	{`keyFile: "/etc/mwgc/mgmt.key"`, []string{`unauthenticated: true`, "keyFile: \"/k\"\n\t\tunauthenticated: true", `port: 1`}},
	{`advertInterval: "100ms"`, []string{`advertInterval: "10ms"`, `advertInterval: "40.95s"`, `advertInterval: "41s"`, `advertInterval: "15ms"`, `advertInterval: "0s"`,
		"advertInterval: \"100ms\"\n\t\tvirtualMAC: true"}},
	{`vrrp: groups: proxy: {`, []string{"vrrp: announce: reannounce: {count: 0, holdoff: \"100ms\", refresh: \"1h\"}\n\tvrrp: groups: proxy: {",
		"vrrp: announce: reannounce: holdoff: \"50ms\"\n\tvrrp: groups: proxy: {"}},
	{`mode: "ha-proxy"`, []string{`mode: "explicit-proxy"`, `mode: "transparent-router"`}},
	{`cidrs:     ["192.0.2.128/25"]`, []string{`cidrs: ["192.0.2.128/25", "2001:db8::/64"]`, `cidrs: ["2001:db8::/64"]`, `cidrs: ["192.0.2.0/24"]`}},
	{`addresses: ["192.0.2.141"]`, []string{`addresses: ["192.0.2.141", "2001:db8::5"]`, `addresses: []`, `addresses: ["192.0.2.131"]`}},
	{`managementIP: "192.0.2.141"`, []string{`managementIP: "192.0.2.142"`, ``}},
	{`interfaces: eth0: {segment: "proxy", addresses: ["192.0.2.132"]}`, []string{`interfaces: eth1: {segment: "proxy", addresses: ["192.0.2.132"], linkLocal: "fe80::2"}`, `interfaces: {}`}},
}

// TestMutatedExamplesKeepTheContract: whatever mwgc validate accepts, the
// agent's strict decoder accepts too; whatever it refuses, it refuses with
// positioned findings and no plans.
func TestMutatedExamplesKeepTheContract(t *testing.T) {
	base, err := os.ReadFile("../examples/ha-proxy/cluster.cue")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(1)
	if s := os.Getenv("MWGC_MUTATION_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	valid := 0
	const runs = 150
	for i := range runs {
		src := string(base)
		for range 1 + rng.IntN(3) {
			m := mutations[rng.IntN(len(mutations))]
			src = strings.Replace(src, m.old, m.news[rng.IntN(len(m.news))], 1)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Load([]string{dir})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Findings {
			if f.Pos.Line == 0 || !strings.HasSuffix(f.Pos.File, "cluster.cue") {
				t.Errorf("run %d: finding without a position in the user's file: %v\n%s", i, f, src)
			}
		}
		if HasErrors(res.Findings) {
			continue
		}
		valid++
		if err := agentRefusal(res); err != nil {
			t.Errorf("run %d: %v\n%s", i, err, src)
		}
	}
	// The mix must exercise both sides of the contract.
	t.Logf("seed %d: %d of %d mutants valid", seed, valid, runs)
	if valid == 0 || valid == runs {
		t.Errorf("%d of %d mutants valid: the mutations do not cover both outcomes", valid, runs)
	}
}
