package compiler

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mwgc/mwgc/schema"
)

// writeRepo writes files (path relative to a new directory → content) and
// returns the directory, the working directory of the test, so that
// positions read as relative paths.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(root)
	return root
}

// loadRepo writes files and loads the whole directory.
func loadRepo(t *testing.T, files map[string]string) []Finding {
	t.Helper()
	writeRepo(t, files)
	res, err := Load([]string{"."})
	if err != nil {
		t.Fatal(err)
	}
	return res.Findings
}

// findingsOf returns the findings of one rule.
func findingsOf(fs []Finding, rule string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// wantFinding fails unless exactly one finding of rule is at pos and its
// message contains every part.
func wantFinding(t *testing.T, fs []Finding, rule, pos string, parts ...string) Finding {
	t.Helper()
	got := findingsOf(fs, rule)
	if len(got) != 1 {
		t.Fatalf("want one %s finding, got %d:\n%s", rule, len(got), findingsText(fs))
	}
	f := got[0]
	if f.Pos.String() != pos {
		t.Errorf("%s at %s, want %s", rule, f.Pos, pos)
	}
	for _, p := range parts {
		if !strings.Contains(f.Message+"\nhint: "+f.Hint, p) {
			t.Errorf("%s does not mention %q: %s\n\thint: %s", rule, p, f.Message, f.Hint)
		}
	}
	return f
}

func findingsText(fs []Finding) string {
	var b strings.Builder
	WriteText(&b, fs)
	return b.String()
}

// clusterOn is a valid two-director cluster on segment seg whose
// addresses are base+"1", base+"2" and (the VIP) base+"0".
func clusterOn(pkg, name, seg, base string, vrid string) string {
	return "package " + pkg + `

clusters: "` + name + `": {
	mode: "ha-proxy"
	nodes: {
		"` + name + `-a": {priority: 200, managementIP: "` + base + `1", interfaces: eth0: {segment: "` + seg + `", addresses: ["` + base + `1"]}}
		"` + name + `-b": {priority: 100, managementIP: "` + base + `2", interfaces: eth0: {segment: "` + seg + `", addresses: ["` + base + `2"]}}
	}
	vrrp: groups: g: {vrid: ` + vrid + `, segment: "` + seg + `", vips: ["` + base + `0"]}
	management: {segment: "` + seg + `", keyFile: "/etc/mwgc/mgmt.key"}
}
`
}

// Two teams, two directories, two names for one broadcast domain: the
// overlap is a finding, and a VRID used on both is a clash.
func TestSegmentIdentityIsThePrefix(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"a/segments.cue": "package a\n\nsegments: lan: {cidrs: [\"192.0.2.0/24\"], protected: true}\n",
		"a/cluster.cue":  clusterOn("a", "blue", "lan", "192.0.2.1", "51"),
		"b/segments.cue": "package b\n\nsegments: office: {cidrs: [\"192.0.2.0/25\"], protected: true}\n",
		"b/cluster.cue":  clusterOn("b", "green", "office", "192.0.2.2", "51"),
	})
	wantFinding(t, fs, "segment-overlap", "b/segments.cue:3:28",
		"segment office", "192.0.2.0/25", "segment lan", "192.0.2.0/24", "a/segments.cue:3:25")
	wantFinding(t, fs, "vrid-duplicate", "b/cluster.cue:9:20",
		"VRID 51", "segment office", "lan", "a/cluster.cue:9:20")
}

func TestSegmentSamePrefixTwoNames(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"s.cue": "package s\n\nsegments: {\n\tlan: {cidrs: [\"192.0.2.0/24\", \"2001:db8::/64\"], protected: true}\n\tzone: {cidrs: [\"2001:db8::/48\"], protected: true}\n}\n",
	})
	wantFinding(t, fs, "segment-overlap", "s.cue:5:17", "segment zone", "2001:db8::/48", "segment lan", "2001:db8::/64")
}

func TestSegmentsApartAreNoFinding(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"s.cue": "package s\n\nsegments: {\n\tlan: {cidrs: [\"192.0.2.0/25\"], protected: true}\n\twan: {cidrs: [\"192.0.2.128/25\", \"2001:db8:1::/64\"], protected: true}\n\tv6: {cidrs: [\"2001:db8:2::/64\"], protected: true}\n}\n",
	})
	if len(fs) != 0 {
		t.Errorf("disjoint segments gave findings:\n%s", findingsText(fs))
	}
}

// A /31 or /32 has no broadcast address of its own: the "broadcast" would
// be a node's address and discovery would reach nobody else.
func TestManagementSegmentNeedsBroadcast(t *testing.T) {
	for _, c := range []struct {
		cidr string
		bad  bool
	}{{"192.0.2.10/31", true}, {"192.0.2.11/32", true}, {"192.0.2.8/30", false}} {
		t.Run(c.cidr, func(t *testing.T) {
			fs := loadRepo(t, map[string]string{
				"c.cue": `package c

segments: {
	lan: {cidrs: ["198.51.100.0/24"], protected: true}
	mgmt: {cidrs: ["` + c.cidr + `"], protected: true}
}
clusters: x: {
	mode: "ha-proxy"
	nodes: {
		a: {priority: 200, managementIP: "192.0.2.11", interfaces: {eth0: {segment: "lan", addresses: ["198.51.100.11"]}, eth1: {segment: "mgmt", addresses: ["192.0.2.11"]}}}
		b: {priority: 100, managementIP: "192.0.2.10", interfaces: {eth0: {segment: "lan", addresses: ["198.51.100.12"]}, eth1: {segment: "mgmt", addresses: ["192.0.2.10"]}}}
	}
	vrrp: groups: g: {vrid: 1, segment: "lan", vips: ["198.51.100.10"]}
	management: {segment: "mgmt", keyFile: "/k"}
}
`})
			got := findingsOf(fs, "management-no-broadcast")
			if c.bad {
				wantFinding(t, fs, "management-no-broadcast", "c.cue:14:15", c.cidr, "broadcast")
			} else if len(got) != 0 {
				t.Errorf("a /30 is fine:\n%s", findingsText(fs))
			}
		})
	}
}

// One segment, one definition: every field is compared, and the message
// names what differs and where the other copy is.
func TestSegmentDefinedTwiceComparesEveryField(t *testing.T) {
	seg := func(pkg, body string) string { return "package " + pkg + "\n\nsegments: lan: " + body + "\n" }
	for _, c := range []struct {
		name, a, b string
		want       string // "" for no finding
	}{
		{"identical", `{cidrs: ["192.0.2.0/24"], protected: true}`, `{cidrs: ["192.0.2.0/24"], protected: true}`, ""},
		{"prefix order", `{cidrs: ["192.0.2.0/24", "2001:db8::/64"], protected: true}`, `{cidrs: ["2001:db8::/64", "192.0.2.0/24"], protected: true}`, ""},
		{"waiver in one copy", `{cidrs: ["192.0.2.0/24"], protected: false, waiver: reason: "lab"}`, `{cidrs: ["192.0.2.0/24"], protected: false}`, "waiver"},
		{"waiver reason", `{cidrs: ["192.0.2.0/24"], protected: false, waiver: reason: "lab"}`, `{cidrs: ["192.0.2.0/24"], protected: false, waiver: reason: "test"}`, "waiver"},
		{"protected", `{cidrs: ["192.0.2.0/24"], protected: true}`, `{cidrs: ["192.0.2.0/24"], protected: false}`, "protected"},
		{"cidrs", `{cidrs: ["192.0.2.0/24"], protected: true}`, `{cidrs: ["192.0.2.0/25"], protected: true}`, "cidrs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := loadRepo(t, map[string]string{"a/s.cue": seg("a", c.a), "b/s.cue": seg("b", c.b)})
			if c.want == "" {
				if len(fs) != 0 {
					t.Errorf("identical definitions gave findings:\n%s", findingsText(fs))
				}
				return
			}
			wantFinding(t, fs, "segment-conflict", "b/s.cue:3:11", "segment lan", "a/s.cue:3:11", c.want)
		})
	}
}

// A file that does not parse must not hide the findings of the other
// files of its package, and must not invent findings either (a field the
// broken file may well hold is not reported missing).
func TestSyntaxErrorKeepsOtherFilesFindings(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"p/broken.cue": "package p\n\nclusters: demo: vrrp: {\n",
		"p/nodes.cue": `package p

segments: lan: {cidrs: ["192.0.2.0/24"], protected: true}
clusters: demo: {
	mode: "ha-proxy"
	nodes: a: {priority: 300, colour: "red", interfaces: eth0: {segment: "lan", addresses: ["192.0.2.11"]}}
}
`,
	})
	wantFinding(t, fs, "syntax", "p/broken.cue:3:25", "expected", "not checked")
	wantFinding(t, fs, "schema", "p/nodes.cue:6:23", "priority", "300")
	wantFinding(t, fs, "unknown-field", "p/nodes.cue:6:28", "colour")
	for _, f := range fs {
		switch f.Rule {
		case "syntax", "schema", "unknown-field":
		default:
			t.Errorf("finding that the broken file may explain: %v", f)
		}
	}
}

// The helper files of the former cue vet recipe (a copy of the schema and
// a file embedding #Repo) must not break validate: the findings stay in
// the user's files, and the copy is pointed out.
func TestSchemaCopyInPackage(t *testing.T) {
	schemaCopy := strings.Replace(schema.Source, "package mwgc", "package c", 1)
	fs := loadRepo(t, map[string]string{
		"c/mwgc_schema.cue": schemaCopy,
		"c/mwgc_vet.cue":    "package c\n\n#Repo\n",
		"c/c.cue": `package c

segments: s: {cidrs: ["192.0.2.0/24"], protected: true}
clusters: demo: {
	mode: "explicit-proxy"
	nodes: "p-1": {priority: 300, interfaces: eth0: {segment: "s", addresses: ["192.0.2.5"]}}
}
`,
	})
	wantFinding(t, fs, "schema", "c/c.cue:6:27", "priority", "300")
	for _, f := range fs {
		if strings.Contains(f.Pos.File, "mwgc_") && f.Rule != "schema-copy" {
			t.Errorf("finding positioned in a helper file: %v", f)
		}
	}
	if got := findingsOf(fs, "schema-copy"); len(got) != 2 {
		t.Errorf("want a schema-copy finding for each helper file:\n%s", findingsText(fs))
	}
}

// A segment the unparsed file may define is not reported as unknown; one
// it does not mention still is. A file that refers to a name only the
// unparsed file could define is left out, and the hint says so.
func TestSyntaxErrorWhatIsNotChecked(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"shared/segments.cue": "package shared\n\nsegments: lan: {cidrs: [\"192.0.2.0/24\"], protected: true\n",
		"shared/defaults.cue": "package shared\n\nsegments: wan: #Protected & {cidrs: [\"198.51.100.0/24\"]}\n",
		"team/cluster.cue": `package team

clusters: demo: {
	mode: "ha-proxy"
	nodes: {
		a: {priority: 200, managementIP: "192.0.2.11", interfaces: eth0: {segment: "lan", addresses: ["192.0.2.11"]}}
		b: {priority: 100, managementIP: "192.0.2.12", interfaces: eth0: {segment: "lan", addresses: ["192.0.2.12"]}}
	}
	vrrp: groups: g: {vrid: 1, segment: "lna", vips: ["192.0.2.10"]}
	management: {segment: "lan", keyFile: "/k"}
}
`,
	})
	wantFinding(t, fs, "syntax", "shared/segments.cue:3:58", "not checked at all: shared/defaults.cue")
	wantFinding(t, fs, "unknown-segment", "team/cluster.cue:9:29", `"lna"`)
	if len(fs) != 2 {
		t.Errorf("want the syntax error and the unknown segment only:\n%s", findingsText(fs))
	}
}

// Two package names in one directory: the finding points at the package
// clause that differs, not at the directory.
func TestMixedPackagesPointAtTheClause(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"d/a.cue": "package clusters\n\nsegments: {}\n",
		"d/b.cue": "package clusters\n\nclusters: {}\n",
		"d/c.cue": "// stray\npackage other\n\nclusters: {}\n",
	})
	wantFinding(t, fs, "load", "d/c.cue:2:9", "package other", "package clusters")
}

// Nested prefixes overlap each other in every pair; neighbours do not.
func TestSegmentOverlapsNested(t *testing.T) {
	fs := loadRepo(t, map[string]string{
		"s.cue": `package s

segments: {
	big: {cidrs: ["192.0.2.0/24"], protected: true}
	mid: {cidrs: ["192.0.2.0/25"], protected: true}
	small: {cidrs: ["192.0.2.0/26"], protected: true}
	upper: {cidrs: ["192.0.2.128/25"], protected: true}
	apart: {cidrs: ["198.51.100.0/24"], protected: true}
}
`})
	re := regexp.MustCompile(`^segment (\S+): prefix \S+ (?:overlaps|is the prefix of) segment (\S+) `)
	var got []string
	for _, f := range findingsOf(fs, "segment-overlap") {
		m := re.FindStringSubmatch(f.Message)
		if m == nil {
			t.Fatalf("message: %s", f.Message)
		}
		got = append(got, "segment "+m[1]+" / "+m[2])
	}
	want := []string{"segment mid / big", "segment small / big", "segment small / mid", "segment upper / big"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("overlaps:\n got %q\nwant %q\n%s", got, want, findingsText(fs))
	}
}
