package headless

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDumpDOMRunsScripts checks that a script's DOM change, made after a
// timer, is in the dump: what the page tests rely on.
func TestDumpDOMRunsScripts(t *testing.T) {
	Require(t)
	file := filepath.Join(t.TempDir(), "p.html")
	page := `<html><body><p id="x">before</p><script>setTimeout(() => { document.getElementById("x").textContent = "after " + (6*7) }, 500)</script></body></html>`
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := DumpDOM(t, "file://"+file, Options{Budget: 2 * time.Second})
	if !strings.Contains(dom, `<p id="x">after 42</p>`) {
		t.Errorf("the timer's change is not in the DOM:\n%s", dom)
	}
	shot := filepath.Join(t.TempDir(), "p.png")
	Screenshot(t, "file://"+file, shot, Options{Width: 400, Height: 300})
	b, _ := os.ReadFile(shot)
	if !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("screenshot is not a PNG")
	}
}
