package schema

import (
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

func TestSchemaCompilesAndDefines(t *testing.T) {
	v := cuecontext.New().CompileString(Source, cue.Filename(Filename))
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	for _, def := range []string{"#Repo", "#Segment", "#Cluster", "#Node", "#Interface", "#VRRP", "#Group", "#Announce", "#Reannounce", "#Management"} {
		if d := v.LookupPath(cue.MakePath(cue.Def(def))); !d.Exists() || d.Err() != nil {
			t.Errorf("%s: missing or broken: %v", def, d.Err())
		}
	}
	if !strings.HasPrefix(strings.TrimLeft(Source, "/ \n"), "mwgc cluster schema") {
		t.Error("the schema should open with its comment")
	}
}

// TestDefaults pins the documented defaults, so that a change to them is
// a deliberate one (README.md lists them).
func TestDefaults(t *testing.T) {
	v := cuecontext.New().CompileString(Source)
	for path, want := range map[string]string{
		"#Node.priority":                "0",
		"#Group.advertInterval":         `"1s"`,
		"#Group.version":                "3",
		"#Group.preempt":                "true",
		"#Group.preemptDelay":           `"0s"`,
		"#Group.acceptMode":             "false",
		"#Group.checksum":               `"rfc9568"`,
		"#Group.virtualMAC":             "false",
		"#Announce.count":               "5",
		"#Announce.interval":            `"10ms"`,
		"#Announce.repeatAfter":         `"5s"`,
		"#Reannounce.count":             "3",
		"#Reannounce.holdoff":           `"1s"`,
		"#Reannounce.refresh":           `"0s"`,
		"#Management.port":              "9793",
		"#Management.discoveryInterval": `"1s"`,
		"#Management.deadAfter":         "3",
		"#Management.unauthenticated":   "false",
	} {
		f := v.LookupPath(cue.ParsePath(path))
		d, ok := f.Default()
		if !ok && f.IsConcrete() {
			d, ok = f, true // a single allowed value, such as version 3
		}
		if !ok {
			t.Errorf("%s has no default", path)
			continue
		}
		b, err := d.MarshalJSON()
		if err != nil || string(b) != want {
			t.Errorf("%s default = %s (%v), want %s", path, b, err, want)
		}
	}
}
