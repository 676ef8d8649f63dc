// Package headless runs Debian's Chromium without a display for tests:
// dump a page's DOM after its scripts ran, or take a screenshot. Each run
// gets a fresh profile and every background service that would reach out
// to the network is turned off.
package headless

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Binary is Debian's chromium.
const Binary = "/usr/bin/chromium"

// Require skips the test without Chromium, and fails it under CI=true,
// where a missing prerequisite is a failure (run `make deps`).
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Binary); err == nil {
		return
	}
	msg := "headless: test needs " + Binary + " (Debian package chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip; run `make deps`)")
	}
	t.Skip(msg)
}

// flags that keep Chromium quiet, offline and root-friendly here.
func flags(profile string) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile,
	}
}

// Options of one run.
type Options struct {
	// Budget is virtual time for the page's scripts and timers before the
	// DOM is taken (--virtual-time-budget); 0 leaves it to Chromium.
	Budget time.Duration
	// Width and Height of the window; 0 means 1280×900.
	Width, Height int
	// FileAccess lets a file:// page load other local files (scripts).
	FileAccess bool
	// Prefix runs Chromium under another command, such as
	// ["ip", "netns", "exec", NS] to reach a listener in a namespace.
	Prefix []string
}

func (o Options) args(profile string) []string {
	w, h := o.Width, o.Height
	if w == 0 || h == 0 {
		w, h = 1280, 900
	}
	args := append(flags(profile), fmt.Sprintf("--window-size=%d,%d", w, h))
	if o.Budget > 0 {
		args = append(args, fmt.Sprintf("--virtual-time-budget=%d", o.Budget.Milliseconds()))
	}
	if o.FileAccess {
		args = append(args, "--allow-file-access-from-files")
	}
	return args
}

// run runs Chromium with args in a fresh profile, bounded by two minutes
// (a shared machine under load starts it slowly).
func run(t testing.TB, opt Options, extra ...string) []byte {
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(append([]string{}, opt.Prefix...), Binary), append(opt.args(profile), extra...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, lastLines(stderr.Bytes(), 20))
	}
	return stdout.Bytes()
}

// DumpDOM loads url and returns the serialised DOM after its scripts ran.
func DumpDOM(t testing.TB, url string, opt Options) string {
	t.Helper()
	return string(run(t, opt, "--dump-dom", url))
}

// Screenshot loads url and writes a PNG of the window to file.
func Screenshot(t testing.TB, url, file string, opt Options) {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	run(t, opt, "--screenshot="+abs, url)
	st, err := os.Stat(abs)
	if err != nil || st.Size() == 0 {
		t.Fatalf("chromium wrote no screenshot to %s: %v", abs, err)
	}
}

func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}
