package graph

import (
	"bytes"
	"flag"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/internal/headless"
)

var update = flag.Bool("update", false, "rewrite testdata/*.mmd and *.dot")

// testCase is a repository to draw: a bundled example, or a txtar archive
// in testdata whose repo/ files are the repository.
type testCase struct {
	name string
	snap *compiler.Snapshot
}

func cases(t *testing.T) []testCase {
	t.Helper()
	var out []testCase
	for _, ex := range []string{"ha-proxy", "transparent-router", "shared-segment"} {
		out = append(out, testCase{"example-" + ex, load(t, filepath.Join("../../examples", ex))})
	}
	files, _ := filepath.Glob("testdata/*.txtar")
	for _, f := range files {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for _, af := range ar.Files {
			p := filepath.Join(dir, af.Name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, af.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, testCase{strings.TrimSuffix(filepath.Base(f), ".txtar"), load(t, filepath.Join(dir, "repo"))})
	}
	return out
}

func load(t *testing.T, dir string) *compiler.Snapshot {
	t.Helper()
	res, err := compiler.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := res.Snapshot()
	if err != nil {
		var b bytes.Buffer
		compiler.WriteText(&b, res.Findings)
		t.Fatalf("%s: %v\n%s", dir, err, b.String())
	}
	return s
}

func render(t *testing.T, s *compiler.Snapshot, dot bool) string {
	var b bytes.Buffer
	var err error
	if dot {
		err = WriteDOT(&b, s)
	} else {
		err = WriteMermaid(&b, s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestGolden compares both formats of every case with testdata/<case>.mmd
// and .dot; -update rewrites them.
func TestGolden(t *testing.T) {
	for _, tc := range cases(t) {
		for ext, dot := range map[string]bool{".mmd": false, ".dot": true} {
			got := render(t, tc.snap, dot)
			file := filepath.Join("testdata", tc.name+ext)
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update and read the result)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", file, diff)
			}
		}
	}
}

// mustShow lists what a drawing of s must show: every node and segment
// name, every VIP, every external peer.
func mustShow(s *compiler.Snapshot) []string {
	var out []string
	for _, seg := range s.Segments {
		out = append(out, "segment "+seg.Name)
	}
	for _, np := range s.Plans {
		out = append(out, np.Node)
		if v := np.Plan.VRRP; v != nil {
			for _, g := range v.Groups {
				out = append(out, "VRRP "+g.Name)
				for _, p := range g.VIPs {
					out = append(out, p.Addr().String())
				}
				for _, peer := range g.Peers {
					out = append(out, peer.Name)
				}
			}
		}
	}
	return out
}

// TestDOTRenders feeds every DOT output to Graphviz: it must lay it out
// without a warning, and the SVG must name everything.
func TestDOTRenders(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dot (graphviz) missing: run `make deps`")
		}
		t.Skip("dot (graphviz) not installed")
	}
	for _, tc := range cases(t) {
		cmd := exec.Command("dot", "-Tsvg")
		cmd.Stdin = strings.NewReader(render(t, tc.snap, true))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("%s: dot: %v\n%s", tc.name, err, stderr.String())
			continue
		}
		svg := html.UnescapeString(stdout.String())
		for _, s := range mustShow(tc.snap) {
			if !strings.Contains(svg, s) {
				t.Errorf("%s: the SVG does not show %q", tc.name, s)
			}
		}
	}
}

// mermaidJS is the Mermaid build `make deps` fetches from npm.
const mermaidJS = "../../bin/mermaid/mermaid.min.js"

// TestMermaidRenders renders every Mermaid output with Mermaid itself, in
// headless Chromium, as GitHub would: it must parse and the SVG must name
// everything.
func TestMermaidRenders(t *testing.T) {
	headless.Require(t)
	js, err := filepath.Abs(mermaidJS)
	if err == nil {
		_, err = os.Stat(js)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: run `make deps`", mermaidJS)
		}
		t.Skipf("%s missing (make deps fetches it)", mermaidJS)
	}
	cs := cases(t)
	var page strings.Builder
	page.WriteString("<!doctype html><html><body>\n")
	for i, tc := range cs {
		fmt.Fprintf(&page, "<pre id=\"src-%d\">%s</pre><div id=\"out-%d\">pending</div>\n", i, html.EscapeString(render(t, tc.snap, false)), i)
	}
	fmt.Fprintf(&page, `<script src="file://%s"></script>
<script>
mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
(async () => {
  for (let i = 0; i < %d; i++) {
    const out = document.getElementById("out-" + i);
    try {
      const r = await mermaid.render("g" + i, document.getElementById("src-" + i).textContent);
      out.innerHTML = "<!--begin-->" + r.svg + "<!--end-->";
    } catch (e) {
      out.textContent = "ERROR " + e.message;
    }
  }
})();
</script></body></html>`, js, len(cs))
	file := filepath.Join(t.TempDir(), "mermaid.html")
	if err := os.WriteFile(file, []byte(page.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := headless.DumpDOM(t, "file://"+file, headless.Options{Budget: 5 * time.Second, FileAccess: true})
	for i, tc := range cs {
		_, rest, ok := strings.Cut(dom, fmt.Sprintf(`<div id="out-%d">`, i))
		body, _, _ := strings.Cut(rest, "</div><")
		if !ok || !strings.Contains(rest, "<!--begin-->") {
			t.Errorf("%s: Mermaid did not render it: %.300s", tc.name, body)
			continue
		}
		svg, _, _ := strings.Cut(rest, "<!--end-->")
		svg = html.UnescapeString(svg)
		for _, s := range mustShow(tc.snap) {
			if !strings.Contains(svg, s) {
				t.Errorf("%s: the rendered Mermaid does not show %q", tc.name, s)
			}
		}
	}
}
