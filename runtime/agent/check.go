package agent

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mwgc/mwgc/runtime/node"
)

// CheckReport says what Check looked at.
type CheckReport struct {
	Cluster, Node, Digest string
	Groups                int
	Management            bool
	// Interfaces the plan uses, found on the host; KeyFile read and found
	// private; TableDir found writable. NotChecked: what only a start does.
	Interfaces []string
	KeyFiles   []string
	TableDir   string
	NotChecked []string
}

func (r CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan ok: cluster %s node %s, %d VRRP groups, management %v, %s\n",
		r.Cluster, r.Node, r.Groups, r.Management, r.Digest)
	var checked []string
	switch len(r.Interfaces) {
	case 0:
	case 1:
		checked = append(checked, "interface "+r.Interfaces[0]+" exists")
	default:
		checked = append(checked, "interfaces "+strings.Join(r.Interfaces, ", ")+" exist")
	}
	for _, f := range r.KeyFiles {
		checked = append(checked, "key file "+f+" readable and private")
	}
	if r.TableDir != "" {
		checked = append(checked, "table file directory "+r.TableDir+" writable")
	}
	if len(checked) > 0 {
		fmt.Fprintf(&b, "checked: %s\n", strings.Join(checked, "; "))
	}
	fmt.Fprintf(&b, "not checked: %s\n", strings.Join(r.NotChecked, "; "))
	return b.String()
}

// Check makes the checks a start makes, short of touching the network:
// the node decides on the plan exactly as at start-up (decode, validate,
// the interfaces it runs on against the host's link listing) and asks for
// its setup steps; of those, the key file is read and judged and the table
// file's directory checked, while sockets are not opened and VIPs,
// link-local sources and nftables rules not changed. The error is the one
// a start would end with.
func Check(data []byte, network Network) (CheckReport, error) {
	if network == nil {
		network = LinuxNetwork{}
	}
	var rep CheckReport
	n := node.New(node.Config{Logger: slog.New(slog.DiscardHandler), MgmtBootID: 1, MgmtRand: mrand.New(mrand.NewPCG(1, 1))})
	now := time.Now()
	links, err := hostLinks(network)
	if err != nil {
		rep.NotChecked = append(rep.NotChecked, "interfaces (cannot list them: "+err.Error()+")")
	} else {
		n.Step(now, node.LinkReport{Full: true, Links: links})
	}
	rep.NotChecked = append(rep.NotChecked, "sockets are not opened; VIPs, link-local sources and nftables rules are not changed")
	queue := []node.Event{node.PlanFile{Data: data, Forced: true}}
	for len(queue) > 0 {
		ev := queue[0]
		queue = queue[1:]
		for _, e := range n.Step(now, ev) {
			switch e := e.(type) {
			case node.Prepare:
				queue = append(queue, node.Prepared{Txn: e.Txn, Results: rep.dryRun(e.Steps)})
			case node.PlanResult:
				if e.Result != node.ResultOK {
					return rep, e.Err
				}
				rep.Cluster, rep.Node, rep.Digest = e.Cluster, e.Node, e.Digest
			}
		}
	}
	st := n.Status()
	rep.Groups, rep.Management = len(st.Groups), st.Management != nil
	if err != nil {
		rep.Interfaces = nil // not looked for on the host
	}
	return rep, nil
}

// dryRun answers a Prepare without changing the host: files are read and
// checked as a start does; the rest is taken as done.
func (r *CheckReport) dryRun(steps []node.Effect) []node.Result {
	results := make([]node.Result, 0, len(steps))
	for _, step := range steps {
		res := node.Result{Step: step}
		switch s := step.(type) {
		case node.ReadFile:
			res.File, res.Err = readFile(s.Path)
			r.KeyFiles = append(r.KeyFiles, s.Path)
		case node.CheckWritable:
			res.Err = checkWritable(s.Path)
			r.TableDir = filepath.Dir(s.Path)
		case node.OpenVRRP:
			if !s.Socket.SendOnly { // a virtual MAC's macvlan is made by a start
				r.addInterface(s.Socket.Interface)
			}
		case node.EnsureVMAC:
			r.NotChecked = append(r.NotChecked, "virtual MAC interface "+s.Name+" is not made")
		case node.OpenMgmt:
			r.addInterface(s.Socket.Interface)
		}
		results = append(results, res)
		if res.Err != nil {
			break
		}
	}
	return results
}

func (r *CheckReport) addInterface(name string) {
	if !slices.Contains(r.Interfaces, name) {
		r.Interfaces = append(r.Interfaces, name)
		slices.Sort(r.Interfaces)
	}
}

// hostLinks returns the host's interfaces: the link watcher's first full
// listing (a read, nothing changes).
func hostLinks(network Network) ([]LinkState, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var links []LinkState
	listed := false
	err := network.WatchLinks(ctx, func(full bool, ls []LinkState) {
		mu.Lock()
		defer mu.Unlock()
		if full && !listed {
			links, listed = slices.Clone(ls), true
		}
	}, func(error) {})
	mu.Lock()
	defer mu.Unlock()
	if err == nil && !listed {
		err = fmt.Errorf("no link listing")
	}
	return links, err
}
