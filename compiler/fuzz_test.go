package compiler

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// FuzzLoad checks generated repositories (repoGen: a few dozen bytes
// describe segments, clusters, nodes, groups, management and mistakes in
// one or two packages). Load must return findings, never panic, and
// position each in a generated file; whatever it accepts must compile to
// plans that the agent's strict decoder accepts.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"",
		"\x00\x01\x01\x00\x01\x00\x01\x00\x00\x00\x02\x01\x00\x00\x01\x00\x01\x03\x00\x00\x01\x00\x00\x01",
		"\x02\x03\x05\x01\x02\x01\x04\x07\x0a\x0b\x01\x06\x05\x04\x03\x02\x01\x07\x06\x05\x09\x08\x07\x01\x02\x03\xf8",
		"\x01\x04\x00\x01\x01\x02\x03\x01\x01\x00\x01\x03\x10\x06\x0b\x02\x04\x00\x05\x03\x06\x07\x00\x01\x02\x02",
	} {
		f.Add([]byte(seed))
	}
	loadFuzzed(f, func(dir string, data []byte) (map[string]string, bool) {
		return (&repoGen{data: data}).files(), len(data) <= 128
	})
}

// FuzzLoadBytes feeds arbitrary bytes as a .cue file: the loader's own
// handling of whatever CUE syntax (partial packages, positions, hints).
// Every input reaches new code in CUE's parser and evaluator, and the
// fuzzer minimizes each such input first, so run it with a short
// -fuzzminimizetime (make fuzz does).
func FuzzLoadBytes(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	loadFuzzed(f, func(dir string, data []byte) (map[string]string, bool) {
		return map[string]string{"p/fuzz.cue": string(data)}, len(data) <= 4096
	})
}

// fuzzSeeds are small on purpose: the fuzzer mutates them, CUE evaluates
// every mutant, and a kilobyte of example evaluates ten times slower than
// the hundred bytes that reach the same rules. One valid cluster, then the
// mistakes the messages are written for.
var fuzzSeeds = []string{
	`package x
segments: s: {cidrs: ["192.0.2.0/24"], protected: true}
clusters: c: {mode: "ha-proxy", nodes: {a: {priority: 2, managementIP: "192.0.2.1", interfaces: e: {segment: "s", addresses: ["192.0.2.1"]}}, b: {priority: 1, managementIP: "192.0.2.2", interfaces: e: {segment: "s", addresses: ["192.0.2.2"]}}}, vrrp: groups: g: {vrid: 1, segment: "s", vips: ["192.0.2.9"]}, management: {segment: "s", unauthenticated: true}}
`,
	"package x\nclusters: a: {mode: \"explicit-proxy\", nodes: b: interfaces: eth0: segment: \"s\"}\nsegments: s: {cidrs: [\"192.0.2.0/24\"], protected: true}\n",
	`segments: {s: {cidrs: ["192.0.2.0/31"], protected: false}, t: {cidrs: ["192.0.2.0/24"], protected: true, waiver: reason: ""}}`,
	`clusters: c: {mode: "ha-proxy", nodes: "N_1": {priorty: 1, managementIP: "192.0.2.01/24", interfaces: e: {segment: "t", addresses: ["192.0.2.1/24"]}}, vrrp: groups: g: {vrid: 0, segment: "s", vips: ["fe80::1"], advertInterval: 1}}`,
	"package x\nclusters: c: {",
	"{",
	"\x00\xff",
}

// loadFuzzed runs the fuzz body shared by FuzzLoad and FuzzLoadBytes: files
// turns an input into the repository (false: too large to be worth it).
// Each input gets a fresh directory below one made per worker, and the
// schema is compiled once per few hundred inputs (half the cost of a small
// one); a new CUE context then bounds the memory one gathers.
func loadFuzzed(f *testing.F, files func(dir string, data []byte) (map[string]string, bool)) {
	root := f.TempDir()
	var base *loader
	runs := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(root, strconv.Itoa(runs))
		defer os.RemoveAll(dir)
		repo, ok := files(dir, data)
		if !ok {
			return
		}
		for name, content := range repo {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if runs%500 == 0 {
			var err error
			if base, err = newLoader(); err != nil {
				t.Fatal(err)
			}
		}
		runs++
		res, err := base.fresh().loadRepo([]string{dir})
		if err != nil {
			t.Fatalf("Load returned an I/O error for readable files: %v", err)
		}
		for _, fd := range res.Findings {
			if fd.Rule == "" || fd.Message == "" {
				t.Fatalf("finding without rule or message: %+v", fd)
			}
			if fd.Pos.File == "" {
				t.Fatalf("finding without a file: %v", fd)
			}
			if fd.End.Line > 0 && (fd.End.Offset < fd.Pos.Offset || fd.End.File != fd.Pos.File) {
				t.Fatalf("finding ends before it starts: %+v", fd)
			}
		}
		if HasErrors(res.Findings) {
			if _, err := res.Plans(); err == nil {
				t.Fatal("Plans accepted a repository with errors")
			}
			return
		}
		if err := agentRefusal(res); err != nil {
			t.Fatalf("%v\nrepository:\n%v", err, repo)
		}
	})
}
