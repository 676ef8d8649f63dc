package node

import (
	"strconv"
	"strings"
	"time"
)

// Notify asks the executor to run one of the plan's vrrp.notify commands
// because a group entered State (keepalived's notify_master, _backup,
// _fault). The executor runs it in the background with Timeout and must
// never wait for it; Env is the command's whole environment besides PATH.
type Notify struct {
	Group, State string
	Command      []string
	Env          []string
	Timeout      time.Duration
}

func (Notify) isEffect() {}

// notify emits the command the plan names for a group entering state to,
// if any. from is the state it left; reason says why, in the engine's
// words.
func (n *Node) notify(now time.Time, m *member, from, to, reason string) {
	if n.plan == nil || n.plan.VRRP == nil || n.plan.VRRP.Notify == nil {
		return
	}
	cfg := n.plan.VRRP.Notify
	argv := cfg.Command(to)
	if len(argv) == 0 {
		return
	}
	g := &m.group
	vips := make([]string, len(g.VIPs))
	for i, v := range g.VIPs {
		vips[i] = v.Addr().String()
	}
	env := []string{
		"MWGC_CLUSTER=" + n.plan.Cluster,
		"MWGC_NODE=" + n.plan.Node,
		"MWGC_GROUP=" + g.Name,
		"MWGC_VRID=" + strconv.Itoa(g.VRID),
		"MWGC_INTERFACE=" + g.Interface,
		"MWGC_FAMILY=" + g.Family,
		"MWGC_STATE=" + to,
		"MWGC_FROM=" + from,
		"MWGC_REASON=" + reason,
		"MWGC_PRIORITY=" + strconv.Itoa(n.plan.VRRP.Priority),
		"MWGC_VIPS=" + strings.Join(vips, " "),
		"MWGC_DIGEST=" + n.plan.Digest,
		"MWGC_TIME=" + now.UTC().Format(time.RFC3339Nano),
	}
	n.emit(Notify{Group: g.Name, State: to, Command: append([]string(nil), argv...), Env: env, Timeout: cfg.Timeout.D()})
}
