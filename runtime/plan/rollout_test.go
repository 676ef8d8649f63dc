package plan

import (
	"strings"
	"testing"
	"time"
)

func withRollout(p *Plan) *Plan {
	p.Rollout = &Rollout{Nodes: []NodeDigest{
		{Node: "dir-a", Digest: "sha256:" + strings.Repeat("a", 64)},
		{Node: "dir-b", Digest: "sha256:" + strings.Repeat("b", 64)},
		{Node: "scan-1", Digest: "sha256:" + strings.Repeat("0", 64)},
	}}
	return p
}

// TestRolloutOutsideTheDigest: the roll-out table lists the other nodes'
// digests, so it cannot be part of this plan's own; a plan that differs
// only there keeps its digest, decodes, and round-trips.
func TestRolloutOutsideTheDigest(t *testing.T) {
	plain, _ := ComputeDigest(directorPlan())
	p := withRollout(directorPlan())
	with, _ := ComputeDigest(p)
	if with != plain {
		t.Fatalf("the roll-out table changed the digest: %s vs %s", with, plain)
	}
	b := mustEncode(t, p)
	q, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if q.Digest != plain || q.Rollout == nil || len(q.Rollout.Nodes) != 3 {
		t.Fatalf("round trip: digest %s, rollout %+v", q.Digest, q.Rollout)
	}
	// Everything else is still covered: a changed priority breaks the digest.
	q.VRRP.Priority++
	if err := q.Validate(); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("a hand-edited priority passed: %v", err)
	}
}

func TestRolloutErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(r *Rollout)
		want string
	}{
		{"stranger", func(r *Rollout) { r.Nodes[0].Node = "dir-x" }, `"dir-x" is not a member`},
		{"twice", func(r *Rollout) { r.Nodes[1].Node = "dir-a" }, "appears twice"},
		{"short digest", func(r *Rollout) { r.Nodes[2].Digest = "sha256:abc" }, "rollout.nodes[2].digest"},
		{"upper case", func(r *Rollout) { r.Nodes[2].Digest = "sha256:" + strings.Repeat("A", 64) }, "rollout.nodes[2].digest"},
		{"other hash", func(r *Rollout) { r.Nodes[0].Digest = "md5:" + strings.Repeat("a", 64) }, "rollout.nodes[0].digest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := withRollout(directorPlan())
			c.edit(p.Rollout)
			p.Digest, _ = ComputeDigest(p)
			if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		notify Notify
		want   string
	}{
		{"relative", Notify{Active: []string{"page.sh"}, Timeout: Duration(time.Second)}, "clean absolute path"},
		{"unclean", Notify{Backup: []string{"/usr/../bin/x"}, Timeout: Duration(time.Second)}, "clean absolute path"},
		{"nul", Notify{Fault: []string{"/bin/x", "a\x00b"}, Timeout: Duration(time.Second)}, "NUL"},
		{"timeout", Notify{Fault: []string{"/bin/x"}, Timeout: Duration(time.Hour)}, "vrrp.notify.timeout"},
		{"empty", Notify{Timeout: Duration(time.Second)}, "no command"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := directorPlan()
			n := c.notify
			p.VRRP.Notify = &n
			p.Digest, _ = ComputeDigest(p)
			if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	p := directorPlan()
	p.VRRP.Notify = &Notify{Active: []string{"/usr/local/bin/page", "up"}, Timeout: Duration(10 * time.Second)}
	if _, err := Decode(mustEncode(t, p)); err != nil {
		t.Fatalf("a valid notify section was refused: %v", err)
	}
	if got := p.VRRP.Notify.Command("Active"); len(got) != 2 || p.VRRP.Notify.Command("Backup") != nil || (*Notify)(nil).Command("Fault") != nil {
		t.Errorf("Command: %v", got)
	}
}
