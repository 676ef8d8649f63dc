package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// KeepalivedInstance describes one VRRPv3 instance for keepalived (the
// Debian package) as a peer in a lab: multicast, no unicast peers, no
// scripts, no health checkers.
type KeepalivedInstance struct {
	Name           string        // vrrp_instance name; default "VI_<VRID>"
	Interface      string        // default "eth0"
	VRID           int           // 1..255
	Priority       int           // 1..255
	AdvertInterval time.Duration // 10ms..255s, whole centiseconds; default 1s
	// VIPs in advert order, one family: "192.0.2.100/24", or for IPv6 a
	// link-local first: "fe80::7/64", "2001:db8::100/64". keepalived drops
	// adverts whose address count differs from its own list.
	VIPs         []string
	NoPreempt    bool
	PreemptDelay time.Duration // whole seconds; 0 = none
	// Extra lines placed verbatim inside the vrrp_instance block.
	Extra []string
	// GlobalFirst allows an IPv6 instance whose first VIP is global (an
	// mwgc peer advertises no link-local VIP; keepalived accepts it).
	GlobalFirst bool
	// AuthHMAC configures keepalived 2.4.2+'s authenticated adverts
	// (needs Binary set to such a build, e.g. Keepalived243).
	AuthHMAC *KeepalivedAuth
}

// KeepalivedAuth is an auth_hmac block: key files by id, the signing key,
// the mode and the freshness window (0: keepalived's default).
type KeepalivedAuth struct {
	Keys      map[int]string // key id -> key file ("hex:..." or text)
	ActiveKey int
	Mode      string // "enforce", "permissive", "receive-only"; "" = enforce
	Window    time.Duration
}

// KeepalivedConfig is a complete keepalived.conf for a lab node.
type KeepalivedConfig struct {
	RouterID  string // default "mwgc-lab"
	Instances []KeepalivedInstance
	// GlobalExtra lines go verbatim into global_defs (e.g.
	// "max_auto_priority" to run keepalived's VRRP child at realtime priority).
	GlobalExtra []string
	// SyncGroup, if set, puts all instances into one vrrp_sync_group of
	// that name, so they move together.
	SyncGroup string
	// Binary is the keepalived to run; "" is the one in PATH (Debian's
	// 2.2.7). Keepalived243 finds the 2.4.3 build in ../shared/tools.
	Binary string
}

func (c KeepalivedConfig) binary() string {
	if c.Binary == "" {
		return "keepalived"
	}
	return c.Binary
}

// Render returns the keepalived.conf text. It returns an error for settings
// keepalived would reject or silently change.
func (c KeepalivedConfig) Render() (string, error) {
	if len(c.Instances) == 0 {
		return "", fmt.Errorf("keepalived config: no vrrp_instance")
	}
	var b strings.Builder
	routerID := c.RouterID
	if routerID == "" {
		routerID = "mwgc-lab"
	}
	// vrrp_version 3: RFC 5798/9568 adverts with centisecond intervals.
	// No scripts are configured; script security with user root keeps
	// keepalived from looking for (and warning about) a keepalived_script
	// user. The garp settings are keepalived's defaults, written out so
	// tests can rely on them: 5 gratuitous ARPs per VIP at takeover and a
	// second burst 5 s later.
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n    vrrp_version 3\n    enable_script_security\n    script_user root\n    vrrp_garp_master_repeat 5\n    vrrp_garp_master_delay 5\n", routerID)
	for _, x := range c.GlobalExtra {
		fmt.Fprintf(&b, "    %s\n", x)
	}
	b.WriteString("}\n")
	names := make([]string, len(c.Instances))
	for i, in := range c.Instances {
		if in.VRID < 1 || in.VRID > 255 {
			return "", fmt.Errorf("keepalived config: virtual_router_id %d out of 1..255", in.VRID)
		}
		if in.Priority < 1 || in.Priority > 255 {
			return "", fmt.Errorf("keepalived config: priority %d out of 1..255", in.Priority)
		}
		interval := in.AdvertInterval
		if interval == 0 {
			interval = time.Second
		}
		if interval < 10*time.Millisecond || interval > 255*time.Second || interval%(10*time.Millisecond) != 0 {
			return "", fmt.Errorf("keepalived config: advert_int %v not whole centiseconds in 10ms..255s", interval)
		}
		if in.Priority == 255 && (in.NoPreempt || in.PreemptDelay > 0) {
			// keepalived starts the owner as MASTER and then ignores both.
			return "", fmt.Errorf("keepalived config: instance %d: priority 255 (owner) cannot have nopreempt or preempt_delay", in.VRID)
		}
		if len(in.VIPs) == 0 {
			return "", fmt.Errorf("keepalived config: instance %d has no virtual_ipaddress", in.VRID)
		}
		var ipv6 bool
		for j, v := range in.VIPs {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return "", fmt.Errorf("keepalived config: virtual_ipaddress %q: %v", v, err)
			}
			if j == 0 {
				ipv6 = p.Addr().Is6()
				// RFC 9568 5.2.9: an IPv6 advert's first address is the
				// virtual router's link-local; keepalived follows the config
				// order and drops adverts whose address count differs.
				if ipv6 && !p.Addr().IsLinkLocalUnicast() && !in.GlobalFirst {
					return "", fmt.Errorf("keepalived config: instance %d: the first IPv6 VIP must be link-local (fe80::/64), got %s", in.VRID, v)
				}
			} else if p.Addr().Is6() != ipv6 {
				return "", fmt.Errorf("keepalived config: instance %d mixes IPv4 and IPv6 VIPs", in.VRID)
			}
		}
		name := in.Name
		if name == "" {
			name = "VI_" + strconv.Itoa(in.VRID)
		}
		names[i] = name
		ifname := in.Interface
		if ifname == "" {
			ifname = nodeIfname
		}
		state := "BACKUP"
		if in.Priority == 255 {
			state = "MASTER" // keepalived wants the address owner to start as MASTER
		}
		fmt.Fprintf(&b, "vrrp_instance %s {\n    state %s\n    interface %s\n    virtual_router_id %d\n    priority %d\n    advert_int %s\n",
			name, state, ifname, in.VRID, in.Priority, strconv.FormatFloat(interval.Seconds(), 'f', -1, 64))
		if ipv6 {
			b.WriteString("    native_ipv6\n")
		}
		if in.NoPreempt {
			b.WriteString("    nopreempt\n")
		}
		if in.PreemptDelay > 0 {
			fmt.Fprintf(&b, "    preempt_delay %d\n", int(in.PreemptDelay.Round(time.Second)/time.Second))
		}
		b.WriteString("    virtual_ipaddress {\n")
		for _, v := range in.VIPs {
			fmt.Fprintf(&b, "        %s\n", v)
		}
		b.WriteString("    }\n")
		for _, x := range in.Extra {
			fmt.Fprintf(&b, "    %s\n", x)
		}
		if a := in.AuthHMAC; a != nil {
			b.WriteString("    auth_hmac {\n")
			ids := make([]int, 0, len(a.Keys))
			for id := range a.Keys {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				fmt.Fprintf(&b, "        key %d file:%s\n", id, a.Keys[id])
			}
			fmt.Fprintf(&b, "        active_key %d\n", a.ActiveKey)
			if a.Mode != "" {
				fmt.Fprintf(&b, "        mode %s\n", a.Mode)
			}
			if a.Window > 0 {
				fmt.Fprintf(&b, "        time_window %d\n", int(a.Window/time.Second))
			}
			b.WriteString("    }\n")
		}
		b.WriteString("}\n")
	}
	if c.SyncGroup != "" {
		fmt.Fprintf(&b, "vrrp_sync_group %s {\n    group {\n", c.SyncGroup)
		for _, n := range names {
			fmt.Fprintf(&b, "        %s\n", n)
		}
		b.WriteString("    }\n}\n")
	}
	return b.String(), nil
}

// CheckKeepalivedConfig runs `keepalived -t -f path` and returns its
// complaints as an error.
func CheckKeepalivedConfig(path string) error { return checkKeepalivedConfig("keepalived", path) }

func checkKeepalivedConfig(binary, path string) error {
	out, err := exec.Command(binary, "-t", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("keepalived -t -f %s: %v\n%s", path, err, out)
	}
	return nil
}

// Keepalived is a keepalived daemon running in the foreground in a lab node.
// keepalived forks: a parent that watches a VRRP child (which sends the
// adverts and holds the VIPs) and respawns it if it dies.
type Keepalived struct {
	lab         *Lab
	node        string
	dir         string
	configPath  string
	pidFile     string
	vrrpPidFile string
	parent      *Process
}

// StartKeepalived writes cfg (checked with keepalived -t) to a file in a
// fresh directory, which also holds the pid files, and starts
//
//	ip netns exec NS keepalived -n -l -D -P -f CONF -p PIDFILE -r VRRP_PIDFILE
//
// It returns once the VRRP child has written its pid file. The lab's
// cleanup kills parent and child.
func (l *Lab) StartKeepalived(node string, cfg KeepalivedConfig) *Keepalived {
	l.t.Helper()
	Require(l.t, cfg.binary())
	if cfg.RouterID == "" {
		cfg.RouterID = l.prefix + "-" + node
	}
	text, err := cfg.Render()
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	dir, err := os.MkdirTemp(l.dir, "keepalived-"+node+"-*")
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	k := &Keepalived{
		lab: l, node: node, dir: dir,
		configPath:  filepath.Join(dir, "keepalived.conf"),
		pidFile:     filepath.Join(dir, "keepalived.pid"),
		vrrpPidFile: filepath.Join(dir, "vrrp.pid"),
	}
	if err := os.WriteFile(k.configPath, []byte(text), 0o644); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	if err := checkKeepalivedConfig(cfg.binary(), k.configPath); err != nil {
		l.t.Fatalf("netlab: %v\nconfig:\n%s", err, text)
	}
	args := []string{"-n", "-l", "-D", "-P", "-f", k.configPath, "-p", k.pidFile, "-r", k.vrrpPidFile}
	if cfg.Binary != "" {
		// The 2.4.3 build has no LVS, so no -P (VRRP only) to ask for.
		args = slices.Delete(args, 3, 4)
	}
	k.parent = l.Start(node, cfg.binary(), args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := k.ChildPid(); err == nil {
			return k
		}
		if k.parent.Exited() || time.Now().After(deadline) {
			l.t.Fatalf("netlab: keepalived in %s did not start its VRRP child:\n%s", node, tail(k.parent.Log(), 4000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Keepalived243 returns the path of the keepalived 2.4.3 build (with
// auth_hmac) that the project keeps beside the repositories, in
// ../shared/tools/ seen from the repository root. Missing: the test is
// skipped, or fails under CI=true.
func Keepalived243(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("netlab: no go.mod above the working directory")
		}
		dir = parent
	}
	p := filepath.Join(filepath.Dir(dir), "shared", "tools", "keepalived-2.4.3")
	Require(t, p)
	return p
}

// ConfigPath is the keepalived.conf in use; rewrite it and call Reload.
func (k *Keepalived) ConfigPath() string { return k.configPath }

// Parent is the keepalived parent process (its log holds the child's too).
func (k *Keepalived) Parent() *Process { return k.parent }

// Log returns what keepalived has logged so far (parent and VRRP child).
func (k *Keepalived) Log() string { return k.parent.Log() }

// ChildPid reads the VRRP child's pid file and checks that it is alive.
func (k *Keepalived) ChildPid() (int, error) {
	b, err := os.ReadFile(k.vrrpPidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("keepalived VRRP pid file %s: %q", k.vrrpPidFile, b)
	}
	if !alive(pid) {
		return 0, fmt.Errorf("keepalived VRRP child %d is not running", pid)
	}
	return pid, nil
}

// KillChild SIGKILLs the VRRP child: a crash of the VRRP process. The
// parent notices and respawns a new child, which starts over as Backup.
func (k *Keepalived) KillChild() error {
	pid, err := k.ChildPid()
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

// Kill crashes keepalived for good: parent stopped (so it cannot respawn),
// VRRP child SIGKILLed, then the parent SIGKILLed. Adverts stop at once and
// the VIPs stay where they were, as after a crash.
func (k *Keepalived) Kill() error {
	if k.parent.Exited() {
		return nil
	}
	_ = k.parent.Signal(syscall.SIGSTOP)
	if pid, err := k.ChildPid(); err == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := k.parent.Kill(); err != nil {
		return err
	}
	return k.waitExit(5 * time.Second)
}

// Stop is a graceful stop: SIGTERM to the parent, which makes the child send
// a priority-0 advert and remove its VIPs. It waits for keepalived to exit.
func (k *Keepalived) Stop() error {
	if k.parent.Exited() {
		return nil
	}
	if err := k.parent.Terminate(); err != nil {
		return err
	}
	return k.waitExit(10 * time.Second)
}

// Reload sends SIGHUP: keepalived rereads its configuration.
func (k *Keepalived) Reload() error { return k.parent.Signal(syscall.SIGHUP) }

func (k *Keepalived) waitExit(timeout time.Duration) error {
	err := k.parent.Wait(timeout)
	if !k.parent.Exited() {
		return err
	}
	return nil
}

// WaitState waits until keepalived logs that instance entered state
// ("MASTER", "BACKUP" or "FAULT") for the n-th time (n >= 1) and reports
// whether it did within timeout.
func (k *Keepalived) WaitState(instance, state string, n int, timeout time.Duration) bool {
	needle := "(" + instance + ") Entering " + state + " STATE"
	deadline := time.Now().Add(timeout)
	for {
		if strings.Count(k.Log(), needle) >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs and is not a zombie (a child killed after
// its parent is orphaned, and may wait a while to be reaped).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may contain
	// spaces or parentheses itself.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}
