package compiler

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"cuelang.org/go/cue"
)

// A segment is a broadcast domain, and a broadcast domain is known by its
// prefix, not by the name somebody gave it: two teams may well name one
// VLAN twice. Segments whose prefixes overlap are reported, and the
// repository-wide rules that hold per segment (VRIDs, link-local
// addresses) treat them as one domain.

// checkOverlaps reports every pair of differently named segments whose
// prefixes of one family overlap, at the name that sorts later, and joins
// them into one domain. Prefixes either nest or are apart, so after
// sorting by first address each prefix overlaps exactly those still open
// before it: O(n log n) for the thousand segments of a large repository.
func (c *checker) checkOverlaps() {
	type entry struct {
		name   string
		prefix netip.Prefix
		at     int
	}
	var pairs [][2]entry
	for _, v4 := range []bool{true, false} {
		var list []entry
		for _, name := range sortedKeys(c.repo.segments) {
			s := c.repo.segments[name]
			e := entry{name, s.v6, s.v6At}
			if v4 {
				e = entry{name, s.v4, s.v4At}
			}
			if !s.broken && e.prefix.IsValid() {
				list = append(list, e)
			}
		}
		slices.SortStableFunc(list, func(a, b entry) int {
			if d := a.prefix.Addr().Compare(b.prefix.Addr()); d != 0 {
				return d
			}
			return a.prefix.Bits() - b.prefix.Bits()
		})
		var open []entry
		for _, e := range list {
			for len(open) > 0 && !open[len(open)-1].prefix.Contains(e.prefix.Addr()) {
				open = open[:len(open)-1]
			}
			for _, o := range open {
				first, second := o, e
				if second.name < first.name {
					first, second = second, first
				}
				pairs = append(pairs, [2]entry{first, second})
			}
			open = append(open, e)
		}
	}
	slices.SortStableFunc(pairs, func(a, b [2]entry) int {
		return cmp.Or(strings.Compare(a[1].name, b[1].name), strings.Compare(a[0].name, b[0].name))
	})
	for _, p := range pairs {
		prev, cur := p[0], p[1]
		c.join(prev.name, cur.name)
		how := "overlaps"
		if prev.prefix == cur.prefix {
			how = "is the prefix of"
		}
		c.add(SeverityError, "segment-overlap", c.repo.segments[cur.name].inst, sel("segments", cur.name, "cidrs", cur.at),
			"define the broadcast domain once and refer to it by one name from every cluster (segments are shared across packages)",
			"segment %s: prefix %s %s segment %s (%s, at %s): two names for one broadcast domain", cur.name, cur.prefix, how,
			prev.name, prev.prefix, c.pos(c.repo.segments[prev.name].inst, sel("segments", prev.name, "cidrs", prev.at)))
	}
}

// domain returns the name that stands for the broadcast domain of
// segment name: itself, or the first name of the segments it overlaps.
func (c *checker) domain(name string) string {
	for {
		up, ok := c.domains[name]
		if !ok || up == name {
			return name
		}
		name = up
	}
}

// join merges the domains of two segments; the name sorting first stands
// for both.
func (c *checker) join(a, b string) {
	a, b = c.domain(a), c.domain(b)
	if a == b {
		return
	}
	if b < a {
		a, b = b, a
	}
	c.domains[b] = a
}

// alsoOn names the segment an earlier use was on when it is another name
// for the same domain, for messages.
func alsoOn(prev, cur string) string {
	if prev == "" || prev == cur {
		return ""
	}
	return fmt.Sprintf(", on segment %s: %s and %s overlap, one broadcast domain", prev, prev, cur)
}

// compareSegments reports a segment defined in two packages with any
// difference: every field of the schema, defaults included, is compared;
// prefixes as a set. Only a segment defined twice pays for the export.
func (c *checker) compareSegments(prev, s *segment) {
	here, err1 := segmentFields(s)
	there, err2 := segmentFields(prev)
	if err1 != nil || err2 != nil {
		return // reported as schema errors
	}
	var diffs []string
	for _, k := range sortedKeys(mergeKeys(here, there)) {
		h, th := here[k], there[k]
		if reflect.DeepEqual(h, th) {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s %s here, %s there", k, showJSON(h), showJSON(th)))
	}
	if len(diffs) == 0 {
		return
	}
	c.add(SeverityError, "segment-conflict", s.inst, sel("segments", s.name),
		"define a shared segment once, or identically in every package",
		"segment %s is defined differently at %s: %s", s.name, c.pos(prev.inst, sel("segments", prev.name)), strings.Join(diffs, "; "))
}

// segmentFields returns the segment's fields as the schema completes them
// (defaults filled in), with the prefixes masked and sorted.
func segmentFields(s *segment) (map[string]any, error) {
	v := s.inst.value.LookupPath(cue.MakePath(cue.Str("segments"), cue.Str(s.name)))
	b, err := v.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if list, ok := m["cidrs"].([]any); ok {
		var canon []string
		for _, x := range list {
			text, _ := x.(string)
			if p, err := netip.ParsePrefix(text); err == nil {
				text = p.Masked().String()
			}
			canon = append(canon, text)
		}
		slices.Sort(canon)
		canon = slices.Compact(canon)
		m["cidrs"] = canon
	}
	return m, nil
}

func mergeKeys(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func showJSON(v any) string {
	if v == nil {
		return "unset"
	}
	if list, ok := v.([]string); ok {
		return "[" + strings.Join(list, ", ") + "]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
