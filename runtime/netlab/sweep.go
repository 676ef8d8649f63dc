package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// registryDir holds one file per live lab naming the process that owns it.
// t.Cleanup does not run when a test binary is killed (go test -timeout,
// SIGKILL, a crash of the runtime); the next lab created on the machine
// then removes the leftovers of labs whose owner is gone.
var registryDir = filepath.Join(os.TempDir(), "mwgc-netlab")

// owner identifies a process across pid reuse: pid plus start time.
func owner(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", false
	}
	return strconv.Itoa(pid) + " " + f[19], true // field 22: starttime
}

// register records that this process owns the lab with prefix.
func register(prefix string) error {
	me, ok := owner(os.Getpid())
	if !ok {
		return fmt.Errorf("netlab: cannot identify own process")
	}
	if err := os.MkdirAll(registryDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(registryDir, prefix), []byte(me+"\n"), 0o600)
}

func unregister(prefix string) { _ = os.Remove(filepath.Join(registryDir, prefix)) }

// sweepAbandoned removes namespaces of labs whose owning process is gone.
func sweepAbandoned() {
	entries, err := os.ReadDir(registryDir)
	if err != nil {
		return
	}
	var abandoned []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "mwgc-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(registryDir, e.Name()))
		if err != nil {
			continue
		}
		rec := strings.TrimSpace(string(b))
		pid, _ := strconv.Atoi(strings.SplitN(rec, " ", 2)[0])
		if now, ok := owner(pid); ok && now == rec {
			continue // owner alive
		}
		abandoned = append(abandoned, e.Name())
	}
	if len(abandoned) == 0 {
		return
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, prefix := range abandoned {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], prefix+"-") {
				killAllIn(f[0])
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
		unregister(prefix)
	}
}
