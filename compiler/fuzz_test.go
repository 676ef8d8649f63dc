package compiler

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mwgc/mwgc/runtime/plan"
)

// agentRefusal compiles a valid result and returns the first plan the
// agent's decoder refuses, or nil: whatever validate accepts, the agent
// must accept too.
func agentRefusal(res *Result) error {
	plans, err := res.Plans()
	if err != nil {
		return err
	}
	for _, np := range plans {
		b, err := plan.Encode(np.Plan)
		if err != nil {
			return err
		}
		if _, err := plan.Decode(b); err != nil {
			return fmt.Errorf("plan %s/%s from a valid repository is refused by the agent: %w", np.Cluster, np.Node, err)
		}
	}
	return nil
}

// FuzzLoad feeds arbitrary bytes as a .cue file. Load must return
// findings, never panic; whatever it accepts must compile to plans that
// the agent's strict decoder accepts.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"../examples/ha-proxy/cluster.cue",
		"../examples/invalid/missing-field/cluster.cue",
		"../examples/invalid/peer-address/cluster.cue",
		"../examples/invalid/vrrp-source-missing/cluster.cue",
	} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("package x\nclusters: a: {mode: \"explicit-proxy\", nodes: b: interfaces: eth0: segment: \"s\"}\nsegments: s: {cidrs: [\"192.0.2.0/24\"], protected: true}\n"))
	f.Add([]byte("{"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "fuzz.cue"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Load([]string{dir})
		if err != nil {
			t.Fatalf("Load returned an I/O error for a readable file: %v", err)
		}
		for _, fd := range res.Findings {
			if fd.Rule == "" || fd.Message == "" {
				t.Fatalf("finding without rule or message: %+v", fd)
			}
		}
		if HasErrors(res.Findings) {
			if _, err := res.Plans(); err == nil {
				t.Fatal("Plans accepted a repository with errors")
			}
			return
		}
		if err := agentRefusal(res); err != nil {
			t.Fatalf("%v\ninput:\n%s", err, data)
		}
	})
}
