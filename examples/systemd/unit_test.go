// Package systemd holds the example unit for mwgc-agent; this test keeps it
// honest: systemd itself checks it where available, and the lines that
// matter (capabilities, reload, restart) are asserted in any case.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const unitFile = "mwgc-agent.service"

// parseUnit returns key -> values (in order) per section.
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	units := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			units[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			units[section][k] = append(units[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return units
}

func TestUnitCapabilitiesAndLifecycle(t *testing.T) {
	u := parseUnit(t, unitFile)
	svc := u["Service"]
	if svc == nil {
		t.Fatal("no [Service] section")
	}
	want := []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}
	for _, key := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		vals := svc[key]
		if len(vals) != 1 {
			t.Errorf("%s appears %d times, want once", key, len(vals))
			continue
		}
		caps := strings.Fields(vals[0])
		slices.Sort(caps)
		if !slices.Equal(caps, want) {
			t.Errorf("%s = %v, want exactly %v", key, caps, want)
		}
	}
	checks := map[string]func(string) bool{
		"ExecStart":       func(v string) bool { return strings.Contains(v, "mwgc-agent") && strings.Contains(v, "--plan ") },
		"ExecReload":      func(v string) bool { return strings.Contains(v, "kill -HUP $MAINPID") },
		"Restart":         func(v string) bool { return v == "on-failure" },
		"NoNewPrivileges": func(v string) bool { return v == "yes" },
		"ProtectSystem":   func(v string) bool { return v == "strict" },
		"KillSignal":      func(v string) bool { return v == "SIGTERM" },
	}
	for key, ok := range checks {
		vals := svc[key]
		if len(vals) != 1 || !ok(vals[0]) {
			t.Errorf("%s = %q, not what the agent needs", key, vals)
		}
	}
	if _, ok := u["Install"]; !ok {
		t.Error("no [Install] section: systemctl enable would not work")
	}
}

// TestUnitVerifies runs systemd's own checker where it exists. The binary
// named in ExecStart need not be installed: that one complaint is allowed.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: systemd-analyze is required (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed; TestUnitCapabilitiesAndLifecycle checks the unit by parsing")
	}
	out, _ := exec.Command(analyze, "verify", "--man=no", unitFile).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" ||
			strings.Contains(line, "/usr/local/bin/mwgc-agent") || // not installed here
			strings.Contains(line, "Failed to connect to bus") || // no systemd in a container
			strings.Contains(line, "Failed to setup working directory") {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
}

// TestTableFilesWritable: every management table file the examples name
// lies in a directory the unit lets the agent write (ProtectSystem=strict
// makes everything else read-only): StateDirectory (/var/lib/X),
// RuntimeDirectory (/run/X) or ReadWritePaths.
func TestTableFilesWritable(t *testing.T) {
	svc := parseUnit(t, unitFile)["Service"]
	var writable []string
	for key, base := range map[string]string{"StateDirectory": "/var/lib/", "RuntimeDirectory": "/run/", "ReadWritePaths": ""} {
		for _, v := range svc[key] {
			for _, d := range strings.Fields(v) {
				writable = append(writable, base+strings.TrimPrefix(d, "-"))
			}
		}
	}
	files, err := filepath.Glob("../*/*.cue")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`tableFile:\s*"([^"]+)"`)
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found++
			ok := slices.ContainsFunc(writable, func(d string) bool { return strings.HasPrefix(m[1], strings.TrimSuffix(d, "/")+"/") })
			if !ok {
				t.Errorf("%s: tableFile %s is not under a directory the unit makes writable (%v)", f, m[1], writable)
			}
		}
	}
	if found == 0 {
		t.Error("no example names a tableFile: the test checks nothing")
	}
}
