package main

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

func TestExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(bad, []byte(`{"apiVersion": "mwgc.dev/plan/v1", "nodes": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join("..", "..", "runtime", "plan", "testdata", "director.json")
	tests := []struct {
		name     string
		args     []string
		code     int
		inOutput string
	}{
		{"no plan", nil, exitBadInput, "--plan is required"},
		{"unknown flag", []string{"--plan", bad, "--nope"}, exitBadInput, "flag provided but not defined"},
		{"stray argument", []string{"--plan", bad, "extra"}, exitBadInput, "unexpected arguments"},
		{"bad log format", []string{"--plan", bad, "--log-format", "xml"}, exitBadInput, "--log-format"},
		{"bad log level", []string{"--plan", bad, "--log-level", "loud"}, exitBadInput, "--log-level"},
		{"missing file", []string{"--plan", filepath.Join(t.TempDir(), "absent.json")}, exitBadInput, "no such file"},
		{"invalid plan", []string{"--plan", bad}, exitBadInput, `unknown field \"nodes\"`},
		{"help", []string{"-h"}, exitOK, "usage: mwgc-agent"},
		{"check bad plan", []string{"--check", "--plan", bad}, exitBadInput, `unknown field "nodes"`},
		// A valid plan whose key file this host does not have: a start
		// would fail, so --check does (TestCheckMakesTheStartUpChecks has
		// one that passes).
		{"check plan this host cannot start", []string{"--check", "--plan", good}, exitRuntime, "the plan would not start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tt.inOutput) {
				t.Errorf("output does not mention %q:\n%s", tt.inOutput, all)
			}
		})
	}
}

// Help and version go to stdout with exit 0, as operators' tools do; a bad
// flag is reported once on stderr.
func TestHelpVersionOnStdout(t *testing.T) {
	for _, tt := range []struct {
		args         []string
		code         int
		stdout, errs string // a line starting with stdout; stderr contains errs once
	}{
		{[]string{"--help"}, exitOK, "usage: mwgc-agent", ""},
		{[]string{"-h"}, exitOK, "usage: mwgc-agent", ""},
		{[]string{"--version"}, exitOK, "mwgc-agent ", ""},
		{[]string{"version"}, exitOK, "mwgc-agent ", ""},
		{[]string{"--nope"}, exitBadInput, "", "flag provided but not defined: -nope"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if tt.stdout != "" && !strings.HasPrefix(out.String(), tt.stdout) {
				t.Errorf("stdout does not start with %q:\n%s\nstderr:\n%s", tt.stdout, out.String(), errOut.String())
			}
			if tt.stdout != "" && errOut.Len() != 0 {
				t.Errorf("stderr not empty: %s", errOut.String())
			}
			if tt.errs != "" && strings.Count(errOut.String(), tt.errs) != 1 {
				t.Errorf("stderr mentions %q %d times:\n%s", tt.errs, strings.Count(errOut.String(), tt.errs), errOut.String())
			}
		})
	}
	var out strings.Builder
	run([]string{"--version"}, &out, &out)
	if !strings.Contains(out.String(), "go1.") {
		t.Errorf("version does not name the Go release: %s", out.String())
	}
}

// loPlan writes a plan on the loopback interface, which every host has,
// with the management key and table file in dir.
func loPlan(t *testing.T, dir string, keyMode os.FileMode) string {
	t.Helper()
	key := filepath.Join(dir, "mgmt.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), keyMode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(key, keyMode)
	lo := netip.MustParseAddr("127.0.0.1")
	p := &plan.Plan{
		APIVersion: plan.APIVersion, Cluster: "edge", Node: "a", Mode: plan.ModeTransparentRouter,
		Interfaces: []plan.Interface{{Name: "lo", Segment: "mgmt", Addresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}},
		Management: &plan.Management{
			Interface: "lo", Address: lo, Broadcast: netip.MustParseAddr("127.255.255.255"), Port: 9793,
			DiscoveryInterval: plan.Duration(time.Second), DeadAfter: 3, KeyFile: key,
			TableFile: filepath.Join(dir, "scanners.json"), Members: []plan.Member{{Name: "a", Address: lo}},
		},
	}
	b, err := plan.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// --check makes the checks a start makes: a plan that decodes but would not
// start (a key file others can read) fails it with exit status 1, as the
// start would.
func TestCheckMakesTheStartUpChecks(t *testing.T) {
	var out, errOut strings.Builder
	good := loPlan(t, t.TempDir(), 0o600)
	if code := run([]string{"--check", "--plan", good}, &out, &errOut); code != exitOK {
		t.Fatalf("--check of a good plan: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"plan ok: cluster edge node a", "interface lo exists", "key file", "table file directory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--check output does not mention %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errOut.Reset()
	bad := loPlan(t, t.TempDir(), 0o644)
	if code := run([]string{"--check", "--plan", bad}, &out, &errOut); code != exitRuntime {
		t.Errorf("--check of a plan with a readable key: exit %d, want %d", code, exitRuntime)
	}
	if !strings.Contains(errOut.String(), "chmod 600") || strings.Contains(out.String(), "plan ok") {
		t.Errorf("--check does not report the key file:\nstdout: %s\nstderr: %s", out.String(), errOut.String())
	}
}

// JSON logs carry durations as people write them, not as nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var b strings.Builder
	log, err := newLogger(&b, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("x", "interval", 100*time.Millisecond, "nested", slog.GroupValue(slog.Duration("d", 1500*time.Millisecond)))
	if !strings.Contains(b.String(), `"interval":"100ms"`) || !strings.Contains(b.String(), `"d":"1.5s"`) {
		t.Errorf("durations not readable: %s", b.String())
	}
}
