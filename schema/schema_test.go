package schema

import (
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
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
		"#Group.acceptMode":             "true",
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

// TestVetRecipe backs docs/schema.md: the package exported as data and
// checked against #Repo (what `cue export | cue vet -d '#Repo'` does)
// reports unknown fields at every level. Embedding #Repo in the package,
// the former recipe, reports none of them: fields declared beside an
// embedding are allowed.
func TestVetRecipe(t *testing.T) {
	const data = `
segments: s: {cidrs: ["192.0.2.0/24"], protected: true}
clusters: demo: {
	mode: "explicit-proxy"
	nodes: "p-1": {priorty: 100, interfaces: eth0: {segment: "s", addresses: ["192.0.2.5"]}}
}
typo: 1
`
	ctx := cuecontext.New()
	pkg := ctx.CompileString(data)
	exported, err := pkg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	repo := ctx.CompileString(Source).LookupPath(cue.MakePath(cue.Def("#Repo")))
	err = repo.Unify(ctx.CompileBytes(exported)).Validate(cue.Concrete(true))
	for _, want := range []string{"priorty: field not allowed", "typo: field not allowed"} {
		if err == nil || !strings.Contains(err.Error()+"\n"+strings.Join(errorsOf(err), "\n"), want) {
			t.Errorf("the recipe misses %q: %v", want, errorsOf(err))
		}
	}

	embedded := ctx.CompileString(strings.Replace(Source, "package mwgc", "", 1) + "\n#Repo\n" + data)
	if err := embedded.Validate(cue.Concrete(true)); err != nil {
		t.Errorf("embedding #Repo now catches unknown fields (%v): docs/schema.md may offer it again", err)
	}
}

func errorsOf(err error) []string {
	var out []string
	for _, e := range cueerrors.Errors(err) {
		out = append(out, e.Error())
	}
	return out
}
