package agent

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

func writeVRRPKey(t *testing.T, path string, secret []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("hex:"+hex.EncodeToString(secret)+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// lastTrailer returns the last advert written on c, split, and checks it
// verifies with secret under key id.
func verifies(t *testing.T, c *fakeConn, id uint8, secret []byte) bool {
	t.Helper()
	c.mu.Lock()
	last := bytes.Clone(c.written[len(c.written)-1])
	c.mu.Unlock()
	if len(last) != 12+auth.TrailerLen {
		t.Fatalf("advert of %d bytes, want a signed one (%d)", len(last), 12+auth.TrailerLen)
	}
	rx, err := auth.New(auth.Config{Keys: []auth.Key{{ID: id, Secret: secret}}, ActiveKey: id})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := rx.Verify(time.Now(), netip.MustParseAddr("192.0.2.11"), 100*time.Millisecond, last[:12], last[12:])
	return res == auth.OK
}

// TestAuthKeyFiles: the agent signs with the key file the plan names, a
// rotation by plan reload and a key file changed in place take effect
// without a restart or a transition, and unusable key files are refused
// with the keys in use kept.
func TestAuthKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k1, k2, k2b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 40)
	f1, f2 := filepath.Join(dir, "vrrp-1.key"), filepath.Join(dir, "vrrp-2.key")
	writeVRRPKey(t, f1, k1, 0o600)
	withAuth := func(active int, files ...string) *plan.Plan {
		p := testPlan()
		g := &p.VRRP.Groups[0]
		g.Auth = &plan.Auth{Mode: plan.AuthEnforce, ActiveKey: active}
		for i, f := range files {
			g.Auth.Keys = append(g.Auth.Keys, plan.Key{ID: i + 1, File: f})
		}
		for i := range g.Peers {
			g.Peers[i].Auth = true
		}
		return p
	}
	h := start(t, withAuth(1, f1))
	h.waitActive()
	c := h.net.conn(connV4)
	h.eventually("signed with key 1", func() bool { return verifies(t, c, 1, k1) })
	transitions := h.metric(`mwgc_agent_transitions_total{from="Backup",group="inside-v4",to="Active"}`)

	// Rotation: add key 2, then make it active.
	writeVRRPKey(t, f2, k2, 0o600)
	h.write(withAuth(1, f1, f2))
	h.eventually("key 2 known", func() bool { return len(h.status().Groups[0].Auth.KeyIDs) == 2 })
	h.write(withAuth(2, f1, f2))
	h.eventually("signed with key 2", func() bool { return verifies(t, c, 2, k2) })

	// The file of key 2 changed in place: in use within the re-read.
	writeVRRPKey(t, f2, k2b, 0o600)
	h.eventually("new content of key 2 in use", func() bool { return verifies(t, c, 2, k2b) })

	// Readable by others: refused, counted, the key in use stays.
	writeVRRPKey(t, f2, k2, 0o644)
	h.eventually("world-readable key refused", func() bool { return h.metric("mwgc_agent_key_file_errors_total") >= 1 })
	time.Sleep(1500 * time.Millisecond)
	if !verifies(t, c, 2, k2b) {
		t.Fatal("a refused key file replaced the key in use")
	}

	// A plan naming a missing key file is refused as a whole.
	h.write(withAuth(3, f1, f2, filepath.Join(dir, "missing.key")))
	h.eventually("plan refused", func() bool {
		r := h.status().LastReload
		return r != nil && r.Result == "failed" && strings.Contains(r.Error, "missing.key")
	})
	if got := h.metric(`mwgc_agent_transitions_total{from="Backup",group="inside-v4",to="Active"}`); got != transitions || h.status().State != "Active" {
		t.Fatalf("transitions %v -> %v, state %s", transitions, got, h.status().State)
	}
}
