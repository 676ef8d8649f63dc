package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent runs for months on every node: it must not carry the CUE
// evaluator (memory growth, binary size, attack surface). The compiler half
// owns CUE; the plan format is plain JSON.
func TestAgentDoesNotLinkCUE(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed only %d packages; cannot judge: %q", len(deps), deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "cuelang.org/") {
			t.Errorf("mwgc-agent links %s", d)
		}
	}
	found := false
	for _, d := range deps {
		if d == "github.com/mwgc/mwgc/runtime/agent" {
			found = true
		}
	}
	if !found {
		t.Errorf("go list -deps does not list runtime/agent; the check looked at the wrong package")
	}
}
