package compiler

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// mistakes is a cluster with the mistakes people make most, one per line,
// so that each finding's position says which mistake it is about.
const mistakes = `package c

segments: lna: {cidrs: ["192.0.2.0/24"], protected: true}
cluster: {}
clusters: demo: {
	mode: "ha-proxy"
	nodes: {
		"Proxy_A": {priority: 200, managementIP: "192.0.2.11", interfaces: eth0: {segment: "lna", addresses: ["192.0.2.11"]}}
		b: {priorty: 100, managementIP: "192.0.2.12/24", interfaces: eth0: {segment: "lna", addresses: ["192.0.2.012"]}}
		c: {managementIP: "192.0.2.13", interfaces: eth0: {segment: "lna", addresses: ["192.0.2.13/24"]}}
	}
	vrrp: groups: g: {vrid: 1, segment: "lna", vips: ["192.0.2.10"], advertInterval: 1, preemptDelay: "100"}
	management: {segment: "lna", keyFile: "/k", discoveryInterval: 2}
}
`

// byLine returns the findings on one line of c.cue.
func byLine(fs []Finding, line int) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Pos.Line == line {
			out = append(out, f)
		}
	}
	return out
}

func TestHintsForCommonMistakes(t *testing.T) {
	fs := loadRepo(t, map[string]string{"c.cue": mistakes})
	for _, c := range []struct {
		name string
		line int
		rule string
		want []string // in the message or the hint
	}{
		{"top-level typo", 4, "unknown-field", []string{`did you mean "clusters"`}},
		{"invalid node name", 8, "name-invalid", []string{`node name "Proxy_A"`, "lower-case", `"proxy-a"`}},
		{"field typo", 9, "unknown-field", []string{`did you mean "priority"`, "interfaces, managementIP, priority"}},
		{"address with prefix", 9, "schema", []string{`"192.0.2.12/24"`, "prefix length", `write "192.0.2.12"`}},
		{"zero-padded address", 9, "schema", []string{`"192.0.2.012"`, "leading zero", `write "192.0.2.12"`}},
		{"address in a list with prefix", 10, "schema", []string{`"192.0.2.13/24"`, `write "192.0.2.13"`}},
		{"duration without unit", 12, "schema", []string{"advertInterval", "unit", `"1s"`}},
		{"duration string without unit", 12, "schema", []string{"preemptDelay", `"100"`, "unit"}},
		{"management duration without unit", 13, "schema", []string{"discoveryInterval", "unit"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var texts []string
			for _, f := range byLine(fs, c.line) {
				if f.Rule != c.rule {
					continue
				}
				text := f.Message + "\n\thint: " + f.Hint
				all := true
				for _, w := range c.want {
					all = all && strings.Contains(text, w)
				}
				if all {
					return
				}
				texts = append(texts, text)
			}
			t.Errorf("no %s finding on line %d mentions %q; there are:\n%s", c.rule, c.line, c.want, strings.Join(texts, "\n"))
		})
	}
	// One finding per mistake: nothing below the invalid name, no
	// "incompatible list lengths" beside the refused element, no
	// generic hint left.
	for _, f := range fs {
		text := f.Message + " " + f.Hint
		for _, bad := range []string{"incompatible list lengths", "Proxy_A.", "check the spelling;", "does not satisfy", "mismatched types"} {
			if strings.Contains(text, bad) {
				t.Errorf("finding says %q: %v\n\thint: %s", bad, f, f.Hint)
			}
		}
	}
	if n := len(byLine(fs, 8)); n != 1 {
		t.Errorf("the invalid node name gave %d findings, want 1:\n%s", n, findingsText(byLine(fs, 8)))
	}
}

// A misspelt segment is reported at each use with the defined segments
// listed, and at the definition nobody uses.
func TestUnknownSegmentListsTheDefinedOnes(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"s.cue": "package c\n\nsegments: {\n\tlna: {cidrs: [\"192.0.2.0/24\"], protected: true}\n\twan: {cidrs: [\"198.51.100.0/24\"], protected: true}\n}\n",
		"c.cue": `package c

clusters: demo: {
	mode: "explicit-proxy"
	nodes: {
		a: interfaces: {eth0: {segment: "lan", addresses: ["192.0.2.11"]}, eth1: {segment: "wan", addresses: ["198.51.100.11"]}}
	}
}
`,
	})
	wantFinding(t, inFile(fs, "c.cue"), "unknown-segment", "c.cue:6:26", `segment "lan" is not defined`, "lna, wan", `did you mean "lna"`, "s.cue:4:2")
	// and once more at the definition nobody uses.
	atDef := inFile(fs, "s.cue")
	if len(atDef) != 1 || atDef[0].Pos.String() != "s.cue:4:2" || !strings.Contains(atDef[0].Message, `"lan"`) || !strings.Contains(atDef[0].Message, "c.cue:6:26") {
		t.Errorf("want one finding at the unused definition naming the use:\n%s", findingsText(fs))
	}
}

// -o json ranges cover the offending text: a value, a label.
func TestJSONRangesHaveWidth(t *testing.T) {
	fs := loadRepo(t, map[string]string{"c.cue": `package c

segments: s: {cidrs: ["192.0.2.0/24"], protected: true}
clusters: demo: {
	mode: "explicit-proxy"
	nodes: "p-1": {priority: 300, colour: "blue", interfaces: eth0: {segment: "s", addresses: ["192.0.2.5"]}}
}
`})
	var b bytes.Buffer
	if err := WriteJSON(&b, fs); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Diagnostics []struct {
			Rule  string
			Range struct {
				Start, End struct{ Line, Column, Byte int }
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{ // rule → start and end column
		"schema":        {27, 30}, // 300
		"unknown-field": {32, 38}, // colour
	}
	for _, d := range r.Diagnostics {
		w, ok := want[d.Rule]
		if !ok {
			t.Errorf("unexpected finding %s", d.Rule)
			continue
		}
		delete(want, d.Rule)
		if d.Range.Start.Column != w[0] || d.Range.End.Column != w[1] || d.Range.End.Line != d.Range.Start.Line ||
			d.Range.End.Byte-d.Range.Start.Byte != w[1]-w[0] {
			t.Errorf("%s: range %+v, want columns %d to %d", d.Rule, d.Range, w[0], w[1])
		}
	}
	if len(want) != 0 {
		t.Errorf("missing findings: %v", want)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"lan", "lan", 0}, {"lan", "lna", 1}, {"priorty", "priority", 1}, {"lan", "wan", 1}, {"cluster", "clusters", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if got := closest("lan", []string{"lna", "wan"}); got != "lna" {
		t.Errorf("closest = %q, want the first of equals", got)
	}
	if got := closest("xyz", []string{"priority"}); got != "" {
		t.Errorf("closest = %q for nothing near", got)
	}
}

func inFile(fs []Finding, file string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Pos.File == file {
			out = append(out, f)
		}
	}
	return out
}
