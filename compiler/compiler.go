// Package compiler loads mwgc cluster definitions written in CUE, checks
// them against the embedded schema and the semantic rules (README.md), and
// builds one plan per node for mwgc-agent.
package compiler

import (
	"encoding/json"
	"fmt"
	"net/netip"

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
	// parsed cidrs; at most one per family is used (the first), found at
	// index v4At, v6At of doc.CIDRs.
	v4, v6     netip.Prefix
	v4At, v6At int
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
	l, err := newLoader()
	if err != nil {
		return nil, err
	}
	return l.loadRepo(paths)
}

// loadRepo is Load with a loader made already (a fuzz test reuses the
// compiled schema across inputs).
func (l *loader) loadRepo(paths []string) (*Result, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	in, err := collectInputs(paths)
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
		if inst.partial != nil {
			c.partials = append(c.partials, inst.partial)
		}
		p := c.entries(inst)
		for _, name := range sortedKeys(p.Segments) {
			s := &segment{name: name, inst: inst, broken: p.Segments[name] == nil}
			if !s.broken {
				s.doc = *p.Segments[name]
			}
			if prev := c.repo.segments[name]; prev != nil {
				if !prev.broken && !s.broken {
					c.compareSegments(prev, s)
				}
				continue
			}
			c.repo.segments[name] = s
		}
		for _, name := range sortedKeys(p.Clusters) {
			if prev := clusters[name]; prev != nil {
				c.add(SeverityError, "cluster-duplicate", inst, sel("clusters", name),
					"give every cluster of the repository its own name",
					"cluster %s is also defined at %s", name, c.pos(prev.inst, sel("clusters", name)))
				continue
			}
			cl := &cluster{name: name, inst: inst}
			clusters[name] = cl
			if p.Clusters[name] == nil {
				// Schema errors were reported; the semantic checks would
				// only repeat them in other words.
				c.brokenClusters[name] = true
				continue
			}
			cl.doc = *p.Clusters[name]
		}
	}
	for _, k := range sortedKeys(clusters) {
		c.repo.clusters = append(c.repo.clusters, clusters[k])
	}
	for _, s := range c.repo.segments {
		s.parse()
	}
}

// parsed holds the decoded segments and clusters of one instance; a nil
// entry stands for one with schema errors.
type parsed struct {
	Segments map[string]*segmentDoc `json:"segments"`
	Clusters map[string]*clusterDoc `json:"clusters"`
}

// entries returns the decoded segments and clusters of inst.
func (c *checker) entries(inst *instance) *parsed {
	if !inst.hasErrors && inst.partial == nil {
		// The unified value validated, so the user's own value is concrete
		// wherever the schema has no default, and the defaults are filled
		// in while decoding (see defaults.go). Plain data is read straight
		// from the syntax tree; anything else is exported from the user's
		// value, which costs about half of exporting the unified one.
		if p := plainData(inst.files); p != nil {
			return p
		}
		var p parsed
		if b, err := inst.user.MarshalJSON(); err == nil && json.Unmarshal(b, &p) == nil {
			return &p
		}
		p = parsed{}
		if b, err := inst.value.MarshalJSON(); err == nil && json.Unmarshal(b, &p) == nil {
			return &p
		}
	}
	// Entry by entry, skipping those with schema errors.
	p := &parsed{Segments: map[string]*segmentDoc{}, Clusters: map[string]*clusterDoc{}}
	for _, label := range []string{"segments", "clusters"} {
		it, err := inst.value.LookupPath(cue.MakePath(cue.Str(label))).Fields()
		if err != nil {
			continue
		}
		for it.Next() {
			name := it.Selector().Unquoted()
			var out any
			if label == "segments" {
				p.Segments[name] = nil
				out = &segmentDoc{}
			} else {
				p.Clusters[name] = nil
				out = &clusterDoc{}
			}
			if inst.broken[[2]string{label, name}] || inst.partial != nil {
				// Schema errors were reported; a partial package may be
				// completed by the file that does not parse.
				continue
			}
			b, err := it.Value().MarshalJSON()
			if err == nil {
				err = json.Unmarshal(b, out)
			}
			if err != nil {
				c.add(SeverityError, "schema", inst, sel(label, name), "see `mwgc schema`", "%s %s: %v", label, name, err)
				continue
			}
			if label == "segments" {
				p.Segments[name] = out.(*segmentDoc)
			} else {
				p.Clusters[name] = out.(*clusterDoc)
			}
		}
	}
	return p
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
