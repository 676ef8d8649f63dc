// Package compiler loads mwgc cluster definitions written in CUE, checks
// them against the embedded schema and the semantic rules (README.md), and
// builds one plan per node for mwgc-agent.
package compiler

import (
	"fmt"
	"net/netip"
	"slices"

	"cuelang.org/go/cue"
)

// Result is what Load found: the findings, and the checked model that
// Plans turns into plans.
type Result struct {
	Findings []Finding
	repo     *repo
}

// repo is the merged, decoded model of every loaded package.
type repo struct {
	segments map[string]*segment
	clusters []*cluster // sorted by name
}

type segment struct {
	name   string
	doc    segmentDoc
	inst   *instance
	broken bool
	// parsed cidrs; at most one per family is used (the first).
	v4, v6 netip.Prefix
}

type cluster struct {
	name string
	doc  clusterDoc
	inst *instance
	// nodes sorted by name, with parsed addresses (filled by the checks).
	nodes []*nodeInfo
}

type nodeInfo struct {
	name string
	doc  nodeDoc
	// ifaceBySegment maps a segment to the first interface on it.
	ifaceBySegment map[string]string
	// addrs holds the parsed addresses of each interface.
	addrs     map[string][]netip.Addr
	linkLocal map[string]netip.Addr
}

// Load reads the CUE packages at paths, validates them and returns every
// finding. The error is for usage and I/O problems only (a path that does
// not exist); problems in the definitions are findings.
func Load(paths []string) (*Result, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	in, err := collectInputs(paths)
	if err != nil {
		return nil, err
	}
	l, err := newLoader()
	if err != nil {
		return nil, err
	}
	var insts []*instance
	for _, d := range in.dirs {
		if inst := l.load(d, in.files[d]); inst != nil {
			insts = append(insts, inst)
		}
	}
	r := &repo{segments: map[string]*segment{}}
	c := newChecker(l, r)
	c.merge(insts)
	c.run()
	SortFindings(l.findings)
	return &Result{Findings: l.findings, repo: r}, nil
}

// merge decodes segments and clusters of every instance into one model.
// A segment may be defined in several packages only identically; a
// cluster name must be unique in the repository.
func (c *checker) merge(insts []*instance) {
	clusters := map[string]*cluster{}
	for _, inst := range insts {
		segs := inst.value.LookupPath(cue.MakePath(cue.Str("segments")))
		if it, err := segs.Fields(); err == nil {
			for it.Next() {
				name := it.Selector().Unquoted()
				s := &segment{name: name, inst: inst, broken: inst.broken[[2]string{"segments", name}]}
				if !s.broken {
					if err := it.Value().Decode(&s.doc); err != nil {
						s.broken = true
					}
				}
				if prev := c.repo.segments[name]; prev != nil {
					if !prev.broken && !s.broken && (!slices.Equal(prev.doc.CIDRs, s.doc.CIDRs) || prev.doc.Protected != s.doc.Protected) {
						c.add(SeverityError, "segment-conflict", inst, sel("segments", name),
							"define a shared segment once, or identically in every package",
							"segment %s is defined differently at %s", name, c.pos(prev.inst, sel("segments", name)))
					}
					continue
				}
				c.repo.segments[name] = s
			}
		}
		cls := inst.value.LookupPath(cue.MakePath(cue.Str("clusters")))
		if it, err := cls.Fields(); err == nil {
			for it.Next() {
				name := it.Selector().Unquoted()
				if prev := clusters[name]; prev != nil {
					c.add(SeverityError, "cluster-duplicate", inst, sel("clusters", name),
						"give every cluster of the repository its own name",
						"cluster %s is also defined at %s", name, c.pos(prev.inst, sel("clusters", name)))
					continue
				}
				cl := &cluster{name: name, inst: inst}
				if inst.broken[[2]string{"clusters", name}] {
					// Schema errors were reported; the semantic checks
					// would only repeat them in other words.
					clusters[name] = cl
					c.brokenClusters[name] = true
					continue
				}
				if err := it.Value().Decode(&cl.doc); err != nil {
					c.add(SeverityError, "schema", inst, sel("clusters", name), "see `mwgc schema`", "cluster %s: %v", name, err)
					c.brokenClusters[name] = true
				}
				clusters[name] = cl
			}
		}
	}
	for _, k := range sortedKeys(clusters) {
		c.repo.clusters = append(c.repo.clusters, clusters[k])
	}
	for _, s := range c.repo.segments {
		s.parse()
	}
}

// sel builds a CUE path from plain labels and list indexes.
func sel(parts ...any) []cue.Selector {
	out := make([]cue.Selector, 0, len(parts))
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, cue.Str(p))
		case int:
			out = append(out, cue.Index(p))
		default:
			panic(fmt.Sprintf("sel: %T", p))
		}
	}
	return out
}
