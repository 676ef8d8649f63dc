package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"check good plan", []string{"--check", "--plan", good}, exitOK, "plan ok: cluster edge node dir-a, 2 VRRP groups, management true, sha256:"},
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
