package netlab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeepalivedConfigRender(t *testing.T) {
	good := KeepalivedConfig{RouterID: "r1", SyncGroup: "G", GlobalExtra: []string{"max_auto_priority"}, Instances: []KeepalivedInstance{
		{VRID: 7, Priority: 150, AdvertInterval: 100 * time.Millisecond, VIPs: []string{"192.0.2.100/24"}, NoPreempt: true},
		{VRID: 8, Priority: 254, AdvertInterval: 10 * time.Millisecond, VIPs: []string{"fe80::8/64", "2001:db8::100/64"}, PreemptDelay: 2 * time.Second},
	}}
	text, err := good.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"vrrp_version 3", "    max_auto_priority\n}\n", "vrrp_instance VI_7 {", "state BACKUP", "interface eth0", "virtual_router_id 7",
		"priority 150", "advert_int 0.1\n", "nopreempt", "192.0.2.100/24",
		"vrrp_instance VI_8 {", "advert_int 0.01\n", "native_ipv6", "preempt_delay 2", "2001:db8::100/64",
		"vrrp_sync_group G {", "        VI_7\n        VI_8\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "nopreempt") != 1 || strings.Contains(text, "unicast") || strings.Contains(text, "MASTER") {
		t.Errorf("unexpected settings:\n%s", text)
	}
	if _, err := exec.LookPath("keepalived"); err == nil || os.Getenv("CI") == "true" {
		path := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := CheckKeepalivedConfig(path); err != nil {
			t.Errorf("keepalived rejects the rendered config: %v\n%s", err, text)
		}
	}

	owner, err := KeepalivedConfig{Instances: []KeepalivedInstance{{VRID: 1, Priority: 255, VIPs: []string{"192.0.2.1/24"}}}}.Render()
	if err != nil || !strings.Contains(owner, "state MASTER") || !strings.Contains(owner, "advert_int 1\n") {
		t.Errorf("owner config (err %v):\n%s", err, owner)
	}

	for name, bad := range map[string]KeepalivedInstance{
		"owner nopreempt":     {VRID: 1, Priority: 255, NoPreempt: true, VIPs: []string{"192.0.2.1/24"}},
		"owner preempt_delay": {VRID: 1, Priority: 255, PreemptDelay: time.Second, VIPs: []string{"192.0.2.1/24"}},
		"vrid 0":              {VRID: 0, Priority: 100, VIPs: []string{"192.0.2.1/24"}},
		"priority 0":          {VRID: 1, Priority: 0, VIPs: []string{"192.0.2.1/24"}},
		"interval 5ms":        {VRID: 1, Priority: 100, AdvertInterval: 5 * time.Millisecond, VIPs: []string{"192.0.2.1/24"}},
		"interval 15ms": {VRID: 1, Priority: 100, AdvertInterval: 15 * time.Millisecond,
			VIPs: []string{"192.0.2.1/24"}},
		"no VIPs":                   {VRID: 1, Priority: 100},
		"bad VIP":                   {VRID: 1, Priority: 100, VIPs: []string{"192.0.2.1"}},
		"mixed family":              {VRID: 1, Priority: 100, VIPs: []string{"192.0.2.1/24", "2001:db8::1/64"}},
		"IPv6 first not link-local": {VRID: 1, Priority: 100, VIPs: []string{"2001:db8::1/64", "fe80::1/64"}},
	} {
		if _, err := (KeepalivedConfig{Instances: []KeepalivedInstance{bad}}).Render(); err == nil {
			t.Errorf("%s: Render accepted it", name)
		}
	}
}

// keepalived alone in a lab becomes MASTER, holds its VIP, sends VRRPv3
// adverts that tshark calls valid; SIGTERM sends priority 0 and drops the VIP.
func TestKeepalivedAloneBecomesMaster(t *testing.T) {
	for _, tc := range []struct {
		name, addr, vip string
	}{
		{"IPv4", "192.0.2.11/24", "192.0.2.100/24"},
		{"IPv6", "2001:db8::11/64", "fe80::7/64 2001:db8::100/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(t, "k")
			l.AddAddr("k", tc.addr)
			wantSrc := strings.Split(tc.addr, "/")[0]
			if strings.Contains(tc.addr, ":") {
				wantSrc = l.LinkLocal("k")
			}
			capture := l.Capture("vrrp or (ip6 proto 112)")
			k := l.StartKeepalived("k", KeepalivedConfig{Instances: []KeepalivedInstance{
				{VRID: 7, Priority: 150, AdvertInterval: 100 * time.Millisecond, VIPs: strings.Fields(tc.vip)},
			}})
			// Active_Down_Interval is about 0.4 s at 100 ms adverts.
			if !k.WaitState("VI_7", "MASTER", 1, 10*time.Second) {
				t.Fatalf("keepalived never became MASTER:\n%s", tail(k.Log(), 3000))
			}
			vip := strings.Fields(tc.vip)[len(strings.Fields(tc.vip))-1]
			waitFor(t, 5*time.Second, func() bool { return l.HasAddr("k", vip) }, "VIP "+vip+" on k")
			time.Sleep(300 * time.Millisecond) // a few adverts
			t0 := time.Now()
			if err := k.Stop(); err != nil {
				t.Fatal(err)
			}
			t.Logf("stop took %v", time.Since(t0))
			for _, line := range strings.Split(k.Log(), "\n") {
				// Our config must not make keepalived complain (script
				// security, unknown keywords, ...). Its NOTICE suggesting
				// max_auto_priority is advice, not a complaint.
				if strings.Contains(line, "NOTICE:") {
					continue
				}
				if strings.Contains(line, "WARN") || strings.Contains(line, "SECURITY") || strings.Contains(line, "rror") || strings.Contains(line, "should") {
					t.Errorf("keepalived complains: %s", line)
				}
			}
			if l.HasAddr("k", vip) {
				t.Errorf("VIP still on k after graceful stop: %v", l.Addrs("k"))
			}
			ads, err := DecodeVRRP(capture.Stop())
			if err != nil {
				t.Fatal(err)
			}
			if len(ads) < 3 {
				t.Fatalf("observer saw %d VRRP packets, want at least 3", len(ads))
			}
			for i, ad := range ads {
				last := i == len(ads)-1
				wantPrio := 150
				if last {
					wantPrio = 0
				}
				if ad.Version != 3 || ad.Type != 1 || ad.VRID != 7 || ad.Priority != wantPrio || ad.Interval != 10 ||
					ad.TTL != 255 || ad.Src != wantSrc || !ad.ChecksumOK {
					t.Errorf("advert %d/%d: %+v; want v3 vrid 7 prio %d interval 10cs TTL 255 from %s, good checksum",
						i+1, len(ads), ad, wantPrio, wantSrc)
				}
			}
		})
	}
}

// A crash of the VRRP child: the parent respawns it. Kill: gone for good.
func TestKeepalivedKillChildAndKill(t *testing.T) {
	l := New(t, "k")
	l.AddAddr("k", "192.0.2.11/24")
	k := l.StartKeepalived("k", KeepalivedConfig{Instances: []KeepalivedInstance{
		{VRID: 9, Priority: 100, AdvertInterval: 100 * time.Millisecond, VIPs: []string{"192.0.2.100/24"}},
	}})
	if !k.WaitState("VI_9", "MASTER", 1, 10*time.Second) {
		t.Fatalf("never MASTER:\n%s", tail(k.Log(), 3000))
	}
	first, err := k.ChildPid()
	if err != nil {
		t.Fatal(err)
	}
	if pids := k.Pids(); len(pids) != 2 || pids[1] != first {
		t.Errorf("Pids = %v, want parent and child %d", pids, first)
	}
	for _, pid := range k.Pids() {
		if u, err := ProcUsage(pid); err != nil || u.RSS == 0 {
			t.Errorf("ProcUsage(%d) = %+v, %v", pid, u, err)
		}
	}
	if err := k.KillChild(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		pid, err := k.ChildPid()
		return err == nil && pid != first
	}, "respawned VRRP child")
	if !k.WaitState("VI_9", "MASTER", 2, 10*time.Second) {
		t.Fatalf("respawned child never MASTER:\n%s", tail(k.Log(), 3000))
	}
	capture := l.Capture("vrrp")
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ads, err := DecodeVRRP(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range ads {
		if ad.Priority == 0 {
			t.Errorf("a crash sent a priority-0 advert: %+v", ad)
		}
	}
	if len(ads) > 1 {
		t.Errorf("%d adverts after the crash, want at most one in flight", len(ads))
	}
	if _, err := k.ChildPid(); err == nil {
		t.Error("VRRP child still alive after Kill")
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
