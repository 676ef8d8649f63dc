package clusterview

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt")

// now is when the fixtures were "fetched".
var now = time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)

func parseFile(t *testing.T, name string) *View {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Parse(b, now)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestText compares mwgc status's output for each fixture with its golden
// file; -update rewrites them.
func TestText(t *testing.T) {
	for _, name := range []string{"active", "backup", "fault"} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, parseFile(t, name+".json")); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".txt")
			if *update {
				os.WriteFile(golden, b.Bytes(), 0o644)
				return
			}
			want, _ := os.ReadFile(golden)
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestActiveView(t *testing.T) {
	v := parseFile(t, "active.json")
	if !v.Active || v.ActiveNode != "dir-a" || v.ActiveManagement != "192.0.2.11" {
		t.Errorf("Active: %v %q %q", v.Active, v.ActiveNode, v.ActiveManagement)
	}
	want := map[string]Tri{"dir-a": Yes, "dir-b": Yes, "scan-1": No, "scan-2": Yes, "scan-3": Unknown}
	for _, n := range v.Nodes {
		if n.InSync != want[n.Name] {
			t.Errorf("%s: roll-out %v, want %v (running %s, compiled %s)", n.Name, n.InSync, want[n.Name], n.Digest, n.Expected)
		}
	}
	if got := v.Rollout.Summary(); got != "3 of 5 nodes run the plan compiled for them; different: scan-1; not answering: scan-3" {
		t.Errorf("summary %q", got)
	}
	var alarms []string
	for _, a := range v.Alarms {
		alarms = append(alarms, a.Severity+": "+a.Text)
	}
	wantAlarms := []string{
		"alarm: group proxy is Active but does not hold VIP 192.0.2.101/24",
		"alarm: group proxy dropped 7 adverts: unknown-source",
		"alarm: management protocol dropped 4 messages: auth",
		"alarm: scan-2 is down (since 30s ago)",
		`alarm: authAlarms: {"count":3,"peer":"dir-b","reason":"auth-bad-mac"}`,
	}
	if diff := cmp.Diff(wantAlarms, alarms); diff != "" {
		t.Errorf("alarms (-want +got):\n%s", diff)
	}
	// Fields other packages add are kept, not dropped.
	extra := map[string]string{}
	for _, f := range v.Extra {
		extra[f.Key] = f.Value
	}
	if extra["distribution"] != `{"eligible":2,"mode":"l2"}` || v.Groups[0].Extra[0] != (Field{"authMode", "enforce"}) {
		t.Errorf("extra fields: %v, group %v", v.Extra, v.Groups[0].Extra)
	}
	if n := v.Nodes[2]; n.Name != "scan-1" || len(n.Extra) != 3 {
		t.Errorf("node extra fields: %+v", n)
	}
}

func TestBackupView(t *testing.T) {
	v := parseFile(t, "backup.json")
	if v.Active || v.ActiveNode != "dir-a" || v.ActiveAddress != "192.0.2.11" || len(v.Nodes) != 0 {
		t.Errorf("backup: active %v node %q addr %q, %d table rows", v.Active, v.ActiveNode, v.ActiveAddress, len(v.Nodes))
	}
	if got := v.ActivePage("9792"); got != "http://192.0.2.11:9792/" {
		t.Errorf("pointer to the Active: %q", got)
	}
	if v.Groups[0].Holder != "dir-a (192.0.2.11)" {
		t.Errorf("holder %q", v.Groups[0].Holder)
	}
	text := ""
	for _, a := range v.Alarms {
		text += a.Text + "\n"
	}
	for _, want := range []string{"last plan reload refused", "without authentication"} {
		if !strings.Contains(text, want) {
			t.Errorf("alarms lack %q:\n%s", want, text)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, bad := range []string{``, `[]`, `{"cluster":"x"}`, `{"node":1}`, `{"node":"a","groups":{}}`, strings.Repeat(" ", MaxSize+1)} {
		if _, err := Parse([]byte(bad), now); err == nil {
			t.Errorf("accepted %.40q", bad)
		}
	}
}

// TestHTML checks what the page shows for each fixture, and that it
// carries nothing from outside: no script, no external URL.
func TestHTML(t *testing.T) {
	for name, want := range map[string][]string{
		"active": {`<span class="state Active" id="state">Active</span>`, "This node is the Active director",
			`<tr data-node="scan-1" data-status="up" data-rollout="no">`, `<tr data-node="scan-2" data-status="down" data-rollout="yes">`,
			"Roll-out: 3 of 5 nodes run the plan compiled for them", `<meta http-equiv="refresh" content="2">`,
			"scan-2 is down", "authAlarms", `mac: <code>02:00:00:00:00:21</code>`},
		"backup": {"The Active director is <span id=\"active-node\">dir-a</span>",
			`<a href="http://192.0.2.11:9792/" id="active-link">`, "Only the Active director knows every node", "refused"},
		"fault": {`<span class="state Fault" id="state">Fault</span>`, "Fault: interface eth0 down"},
	} {
		var b bytes.Buffer
		if err := WriteHTML(&b, parseFile(t, name+".json"), PageOptions{Port: "9792", Generated: now}); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("%s page lacks %s", name, w)
			}
		}
		for _, banned := range []string{"<script", "https://", "src=", "@import"} {
			if strings.Contains(page, banned) {
				t.Errorf("%s page contains %q", name, banned)
			}
		}
	}
}

// TestHTMLEscapes: names and errors from the document cannot inject markup.
func TestHTMLEscapes(t *testing.T) {
	doc := `{"cluster":"<b>x</b>","node":"n<script>alert(1)</script>","state":"Backup\" onmouseover=\"x","lastReload":{"result":"refused","error":"<img src=x>"}}`
	v, err := Parse([]byte(doc), now)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	WriteHTML(&b, v, PageOptions{})
	for _, bad := range []string{"<script>alert", "<img src=x>", `" onmouseover="`, "<b>x</b>"} {
		if strings.Contains(b.String(), bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
}

// FuzzParse: any bytes give an error or a view both writers print.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"active.json", "backup.json", "fault.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(b)
	}
	f.Add([]byte(`{"node":"a","groups":[1,{}],"management":{"active":true,"nodes":[{},2]},"alarms":{"x":[1]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, now)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteText(&b, v); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(&b, v, PageOptions{Port: "1"}); err != nil {
			t.Fatal(err)
		}
	})
}
