package node

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// The scenarios in testdata/*.txt drive one Node on a fake clock and
// compare every effect it returns. Format, one statement a line ('#'
// starts a comment):
//
//	### name                   starts a scenario (a fresh node, no plans)
//	plan P [from Q] K=V...     defines plan P (a copy of Q); keys: node prio
//	                           announce=COUNTxINTERVAL[+REPEAT]
//	                           reannounce=COUNT/HOLDOFF[/REFRESH]
//	group P G K=V...           adds or replaces group G of plan P; keys: vrid
//	                           if src int preempt delay accept (default
//	                           true, as mwgc's schema) vips peers form
//	                           vmac (NAME: the group's virtual-MAC macvlan)
//	                           (peers=ADDR[@PRIO],...: the plan's priority of each, default 100)
//	                           unicast=MINTTL|off
//	nogroup P G                removes group G from plan P
//	mgmt P K=V...              management section of plan P; keys: if addr
//	                           bcast port int dead key table version discovery
//	                           members (NAME@ADDR[+d],...); "mgmt P none"
//	                           removes it
//	dist P [nodes=N@A[+d],...] P takes a share of distributed traffic
//	                           (proxy port 9090 on eth0); with nodes, P is
//	                           a director mapping 64 slots over them
//	file PATH MODE [HEX...]    a key file of the fake host (one key per HEX)
//	nofile PATH                removes it
//	show WORD...               shows effects hidden by default ("watch")
//	hide WORD...               leaves out effects whose rendering starts
//	                           with WORD (see render)
//	notify-env                 renders notify effects with their environment
//	                           (plan key notify=STATE:/path[,ARG...])
//	TIME EVENT ARGS            feeds an event at t0+TIME; the lines that
//	> EFFECT                   follow starting with '>' are exactly the
//	                           effects expected, in order
//
// Events: load P [force] | load-bad TEXT | load-missing | ok TXN (every
// step of Prepare TXN works; files come from the fake host) | fail TXN I
// TEXT (step I fails) | links IF=up|down... (full listing) | link IF
// up|down|gone | recv G K=V... (an advert for group G's socket from its
// first peer; keys src prio int vrid ttl dst via, dst defaulting to the
// group address, or the group's source for unicast; via=G: read on group
// G's socket) | tick | stop | failed-add G VIP
// | frame G SRC MAC (the impersonation watcher saw an advert from SRC with
// Ethernet source MAC on group G's interface)
// | claim G VIP MAC [KIND [COUNT]] (a watcher saw another host claim VIP
// on group G's interface; KIND defaults to arp-reply, COUNT to 1)
// | key PATH (the periodic re-read of a key file) | load-avg N | answer
// NAME ADDR KEYHEX (a management answer from a member) | discovery NAME
// ADDR KEYHEX [MAC] (with MAC: version 2, proxy serving) | discovery NAME
// ADDR KEYHEX | again (the last management message once more) |
// neighbors IF ADDR=MAC... (answers ReadNeighbors).
//
// Checks: state S (the node's state in Status; "none" before a plan) |
// last-reload RESULT (Status.LastReload; "none" when absent) |
// group-state G STATE VIPS (a group's state and held VIPs, "-" for none) |
// deadline T|none |
// error TEXT (the last plan result's error contains TEXT) | digest P
// (the running plan is P) | alarms none | alarms KIND ADDR WHERE MAC COUNT
// [; ...] (Status.Alarms in order) | table NAME STATUS (a row of the management
// table) | mgmt-active true|false | mgmt-stats K=V... (reloads-ok
// reloads-refused key-reloads key-refused table-writes answers drop-REASON)
// | advert-first G ADDR (the first address of G's last advert).
// Check unicast-peer G PEER K=V... compares a unicast group's peer in
// /status: received, last (time of its last advert, or none), drop-REASON.
// Event report SERVING MAC answers a CheckReport.

var t0 = time.Unix(1_000_000, 0)

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	total := 0
	for _, file := range files {
		for _, s := range readScenarios(t, file) {
			total++
			t.Run(s.name, func(t *testing.T) { s.run(t) })
		}
	}
	if total < 15 {
		t.Fatalf("only %d scenarios read", total)
	}
}

type scenario struct {
	name  string
	file  string
	lines []scriptLine
}

type scriptLine struct {
	num  int
	text string
	want []string // for events: the '>' lines after it
}

func readScenarios(t *testing.T, path string) []*scenario {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all []*scenario
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "###"); ok {
			all = append(all, &scenario{name: strings.TrimSpace(name), file: path})
			continue
		}
		if want, ok := strings.CutPrefix(strings.TrimSpace(line), ">"); ok {
			if i := strings.Index(want, "#"); i >= 0 {
				want = want[:i]
			}
			s := all[len(all)-1]
			if len(s.lines) == 0 {
				t.Fatalf("%s:%d: '>' before any event", path, n)
			}
			last := &s.lines[len(s.lines)-1]
			last.want = append(last.want, strings.Join(strings.Fields(want), " "))
			continue
		}
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(all) == 0 {
			t.Fatalf("%s:%d: statement before the first ### header", path, n)
		}
		s := all[len(all)-1]
		s.lines = append(s.lines, scriptLine{num: n, text: strings.TrimSpace(line)})
	}
	return all
}

// world is a scenario's state: the node, the plans, the fake host's files.
type world struct {
	t        *testing.T
	node     *Node
	plans    map[string]*plan.Plan
	files    map[string]File
	prepares map[uint64]Prepare
	hide     []string
	result   PlanResult
	seq      uint64
	lastMgmt Event
	adverts  map[string]SendAdvert // the last advert of each group
	// notifyEnv renders a Notify effect with its whole environment.
	notifyEnv bool
}

func (s *scenario) run(t *testing.T) {
	w := &world{t: t, node: New(Config{MgmtBootID: 0x5eed}), plans: map[string]*plan.Plan{},
		files: map[string]File{}, prepares: map[uint64]Prepare{}, adverts: map[string]SendAdvert{},
		hide: []string{"watch", "watch-claims"}} // the impersonation watchers: "show watch" to see them
	for _, l := range s.lines {
		if err := w.exec(l); err != nil {
			t.Fatalf("%s:%d: %s\n%v", s.file, l.num, l.text, err)
		}
	}
}

func (w *world) exec(l scriptLine) error {
	f := strings.Fields(l.text)
	switch f[0] {
	case "plan":
		return w.definePlan(f[1:])
	case "group":
		return w.defineGroup(f[1], f[2], f[3:])
	case "nogroup":
		p := w.plans[f[1]]
		p.VRRP.Groups = slices.DeleteFunc(p.VRRP.Groups, func(g plan.Group) bool { return g.Name == f[2] })
		return nil
	case "mgmt":
		return w.defineMgmt(f[1], f[2:])
	case "dist":
		p := w.plans[f[1]]
		p.Distribution = &plan.Distribution{Mode: plan.DistributionL2, VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100")},
			Ports: []int{80}, ProxyPort: 9090, Interface: "eth0", Scans: true}
		// nodes=NAME@ADDR[+d],... makes it a director's: the table of 64
		// slots over those nodes, directors scanning too.
		for _, kv := range f[2:] {
			if list, ok := strings.CutPrefix(kv, "nodes="); ok {
				d := p.Distribution
				d.VIPInterface, d.Slots, d.Seed, d.DirectorsScan = "eth0", 64, 7, true
				for _, m := range strings.Split(list, ",") {
					name, addr, _ := strings.Cut(strings.TrimSuffix(m, "+d"), "@")
					d.Nodes = append(d.Nodes, plan.DistributionNode{Name: name, Address: netip.MustParseAddr(addr), Director: strings.HasSuffix(m, "+d")})
				}
			}
		}
		return nil
	case "file":
		return w.defineFile(f[1:])
	case "nofile":
		delete(w.files, f[1])
		return nil
	case "hide":
		w.hide = append(w.hide, f[1:]...)
		return nil
	case "notify-env":
		w.notifyEnv = true
		return nil
	case "show":
		w.hide = slices.DeleteFunc(w.hide, func(h string) bool { return slices.Contains(f[1:], h) })
		return nil
	case "state", "group-state", "deadline", "error", "digest", "table", "mgmt-active", "mgmt-stats", "advert-first", "unicast-peer", "last-reload", "alarms":
		return w.check(f)
	}
	at, err := time.ParseDuration(f[0])
	if err != nil {
		return fmt.Errorf("want a time or a statement: %v", err)
	}
	if len(f) < 2 {
		return errors.New("no event")
	}
	now := t0.Add(at)
	ev, err := w.event(now, f[1], f[2:])
	if err != nil {
		return err
	}
	var got []string
	for _, e := range w.node.Step(now, ev) {
		if p, ok := e.(Prepare); ok {
			w.prepares[p.Txn] = p
		}
		if r, ok := e.(PlanResult); ok {
			w.result = r
		}
		if a, ok := e.(SendAdvert); ok {
			w.adverts[a.Group] = a
		}
		r := render(e)
		if nf, ok := e.(Notify); ok && w.notifyEnv {
			r += " | " + strings.Join(nf.Env, " | ")
		}
		if !slices.Contains(w.hide, strings.Fields(r)[0]) {
			got = append(got, r)
		}
	}
	if diff := cmp.Diff(l.want, got); diff != "" {
		return fmt.Errorf("effects (-want +got):\n%s", diff)
	}
	return nil
}

// ---- Plans.

func (w *world) definePlan(args []string) error {
	name := args[0]
	args = args[1:]
	p := &plan.Plan{APIVersion: plan.APIVersion, Cluster: "edge", Node: "a", Mode: plan.ModeTransparentRouter,
		VRRP: &plan.VRRP{Priority: 200, Announce: plan.Announce{Count: 1}}}
	if len(args) >= 2 && args[0] == "from" {
		src := w.plans[args[1]]
		if src == nil {
			return fmt.Errorf("no plan %q", args[1])
		}
		b, err := json.Marshal(src) // a deep copy, not yet a valid plan
		if err != nil {
			return err
		}
		p = &plan.Plan{}
		if err := json.Unmarshal(b, p); err != nil {
			return err
		}
		args = args[2:]
	}
	for _, kv := range args {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "node":
			p.Node = v
		case "prio":
			n, err := strconv.Atoi(v)
			if err != nil {
				return err
			}
			p.VRRP.Priority = n
		case "announce":
			a, err := parseAnnounce(v)
			if err != nil {
				return err
			}
			a.Reannounce = p.VRRP.Announce.Reannounce
			p.VRRP.Announce = a
		case "reannounce":
			parts := strings.Split(v, "/")
			n, err := strconv.Atoi(parts[0])
			if err != nil || len(parts) < 2 {
				return fmt.Errorf("reannounce=%s: want COUNT/HOLDOFF[/REFRESH]", v)
			}
			ra := &plan.Reannounce{Count: n}
			for i, d := range parts[1:] {
				dur, err := time.ParseDuration(d)
				if err != nil {
					return err
				}
				if i == 0 {
					ra.Holdoff = plan.Duration(dur)
				} else {
					ra.Refresh = plan.Duration(dur)
				}
			}
			p.VRRP.Announce.Reannounce = ra
		case "notify": // notify=STATE:/path[,arg...]: the command for a state
			state, cmd, _ := strings.Cut(v, ":")
			if p.VRRP.Notify == nil {
				p.VRRP.Notify = &plan.Notify{Timeout: plan.Duration(10 * time.Second)}
			}
			argv := strings.Split(cmd, ",")
			switch state {
			case "active":
				p.VRRP.Notify.Active = argv
			case "backup":
				p.VRRP.Notify.Backup = argv
			case "fault":
				p.VRRP.Notify.Fault = argv
			default:
				return fmt.Errorf("notify state %q", state)
			}
		default:
			return fmt.Errorf("unknown plan key %q", k)
		}
	}
	w.plans[name] = p
	return nil
}

// parseAnnounce reads COUNTxINTERVAL[+REPEAT].
func parseAnnounce(v string) (plan.Announce, error) {
	var a plan.Announce
	cnt, rest, _ := strings.Cut(v, "x")
	iv, rep, hasRep := strings.Cut(rest, "+")
	n, err := strconv.Atoi(cnt)
	if err != nil {
		return a, err
	}
	d, err := time.ParseDuration(iv)
	if err != nil {
		return a, err
	}
	a.Count, a.Interval = n, plan.Duration(d)
	if hasRep {
		r, err := time.ParseDuration(rep)
		if err != nil {
			return a, err
		}
		a.RepeatAfter = plan.Duration(r)
	}
	return a, nil
}

func (w *world) defineGroup(planName, name string, args []string) error {
	p := w.plans[planName]
	if p == nil {
		return fmt.Errorf("no plan %q", planName)
	}
	g := plan.Group{Name: name, Version: 3, Interface: "eth0", Family: plan.FamilyIPv4, Preempt: true,
		AdvertInterval: plan.Duration(time.Second), Checksum: plan.ChecksumPseudoHeader, AcceptMode: true}
	if i := slices.IndexFunc(p.VRRP.Groups, func(x plan.Group) bool { return x.Name == name }); i >= 0 {
		g = p.VRRP.Groups[i]
	}
	for _, kv := range args {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "vrid":
			g.VRID, err = strconv.Atoi(v)
		case "if":
			g.Interface = v
		case "src":
			g.Source, err = netip.ParseAddr(v)
			if g.Source.Is6() {
				g.Family, g.Checksum = plan.FamilyIPv6, ""
			}
		case "int":
			var d time.Duration
			d, err = time.ParseDuration(v)
			g.AdvertInterval = plan.Duration(d)
		case "preempt":
			g.Preempt, err = strconv.ParseBool(v)
		case "delay":
			var d time.Duration
			d, err = time.ParseDuration(v)
			g.PreemptDelay = plan.Duration(d)
		case "accept":
			g.AcceptMode, err = strconv.ParseBool(v)
		case "vips":
			g.VIPs = nil
			for _, s := range strings.Split(v, ",") {
				var pf netip.Prefix
				if pf, err = netip.ParsePrefix(s); err != nil {
					break
				}
				g.VIPs = append(g.VIPs, pf)
			}
		case "peers":
			g.Peers = nil
			for i, s := range strings.Split(v, ",") {
				// ADDR or ADDR@PRIORITY (the plan's priority of the peer, default 100)
				prio := 100
				if at := strings.IndexByte(s, '@'); at >= 0 {
					if prio, err = strconv.Atoi(s[at+1:]); err != nil {
						break
					}
					s = s[:at]
				}
				var a netip.Addr
				if a, err = netip.ParseAddr(s); err != nil {
					break
				}
				g.Peers = append(g.Peers, plan.Peer{Name: fmt.Sprintf("peer%d", i+1), Address: a, Priority: prio})
			}
		case "form":
			g.Checksum = v
		case "vmac":
			g.VMACInterface = v
		case "unicast": // the minimum TTL, or "off"
			g.Unicast = nil
			if v != "off" {
				g.Unicast = &plan.Unicast{}
				g.Unicast.MinTTL, err = strconv.Atoi(v)
			}
		default:
			err = fmt.Errorf("unknown group key %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %v", kv, err)
		}
	}
	if i := slices.IndexFunc(p.VRRP.Groups, func(x plan.Group) bool { return x.Name == name }); i >= 0 {
		p.VRRP.Groups[i] = g
	} else {
		p.VRRP.Groups = append(p.VRRP.Groups, g)
	}
	return nil
}

func (w *world) defineMgmt(planName string, args []string) error {
	p := w.plans[planName]
	if p == nil {
		return fmt.Errorf("no plan %q", planName)
	}
	if len(args) == 1 && args[0] == "none" {
		p.Management = nil
		return nil
	}
	m := p.Management
	if m == nil {
		m = &plan.Management{Interface: "eth0", Address: netip.MustParseAddr("192.0.2.11"),
			Broadcast: netip.MustParseAddr("192.0.2.255"), Port: 9793,
			DiscoveryInterval: plan.Duration(time.Second), DeadAfter: 3, Unauthenticated: true}
	}
	for _, kv := range args {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "if":
			m.Interface = v
		case "addr":
			m.Address, err = netip.ParseAddr(v)
		case "port":
			m.Port, err = strconv.Atoi(v)
		case "int":
			var d time.Duration
			d, err = time.ParseDuration(v)
			m.DiscoveryInterval = plan.Duration(d)
		case "dead":
			m.DeadAfter, err = strconv.Atoi(v)
		case "key":
			m.KeyFile, m.Unauthenticated = v, v == ""
		case "table":
			m.TableFile = v
		case "version":
			m.Version, err = strconv.Atoi(v)
		case "discovery":
			m.Discovery = v
			if v == plan.DiscoveryUnicast {
				m.Broadcast = netip.Addr{}
			}
		case "members":
			m.Members = nil
			for _, s := range strings.Split(v, ",") {
				name, addr, _ := strings.Cut(s, "@")
				addr, dir := strings.CutSuffix(addr, "+d")
				a, perr := netip.ParseAddr(addr)
				if perr != nil {
					return perr
				}
				m.Members = append(m.Members, plan.Member{Name: name, Address: a, Director: dir})
			}
		default:
			err = fmt.Errorf("unknown mgmt key %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %v", kv, err)
		}
	}
	p.Management = m
	return nil
}

func (w *world) defineFile(args []string) error {
	mode, err := strconv.ParseUint(args[1], 8, 32)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, k := range args[2:] {
		b.WriteString(k + "\n")
	}
	w.files[args[0]] = File{Data: []byte(b.String()), Mode: fs.FileMode(mode)}
	return nil
}

// encode completes plan P (interfaces from its groups and management,
// digest) and encodes it.
func (w *world) encode(name string) ([]byte, error) {
	src := w.plans[name]
	if src == nil {
		return nil, fmt.Errorf("no plan %q", name)
	}
	p := *src
	p.Interfaces = nil
	iface := func(n string) *plan.Interface {
		for i := range p.Interfaces {
			if p.Interfaces[i].Name == n {
				return &p.Interfaces[i]
			}
		}
		p.Interfaces = append(p.Interfaces, plan.Interface{Name: n, Segment: "seg-" + n})
		return &p.Interfaces[len(p.Interfaces)-1]
	}
	addAddr := func(in *plan.Interface, a netip.Addr, bits int) {
		pf := netip.PrefixFrom(a, bits)
		if !slices.Contains(in.Addresses, pf) {
			in.Addresses = append(in.Addresses, pf)
		}
	}
	for _, g := range p.VRRP.Groups {
		in := iface(g.Interface)
		switch {
		case g.Family == plan.FamilyIPv6 && g.Source.IsLinkLocalUnicast():
			in.LinkLocal = g.Source
		case g.Family == plan.FamilyIPv6:
			addAddr(in, g.Source, 64)
		default:
			addAddr(in, g.Source, 24)
		}
	}
	if m := p.Management; m != nil {
		addAddr(iface(m.Interface), m.Address, 24)
	}
	if len(p.VRRP.Groups) == 0 {
		p.VRRP = nil
	}
	return plan.Encode(&p)
}

// ---- Events.

func (w *world) event(now time.Time, name string, args []string) (Event, error) {
	switch name {
	case "load":
		b, err := w.encode(args[0])
		if err != nil {
			return nil, err
		}
		return PlanFile{Data: b, Forced: slices.Contains(args, "force")}, nil
	case "load-bad":
		text, forced := strings.CutSuffix(strings.Join(args, " "), " force")
		return PlanFile{Data: []byte(text), Forced: forced}, nil
	case "load-missing":
		return PlanFile{Err: &fs.PathError{Op: "open", Path: "plan.json", Err: fs.ErrNotExist}, Forced: slices.Contains(args, "force")}, nil
	case "ok", "fail":
		txn, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			return nil, err
		}
		prep, ok := w.prepares[txn]
		if !ok {
			return nil, fmt.Errorf("no Prepare %d seen", txn)
		}
		failAt := -1
		if name == "fail" {
			if failAt, err = strconv.Atoi(args[1]); err != nil {
				return nil, err
			}
		}
		var res []Result
		for i, s := range prep.Steps {
			r := Result{Step: s}
			if rf, ok := s.(ReadFile); ok {
				f, ok := w.files[rf.Path]
				if !ok {
					r.Err = &fs.PathError{Op: "open", Path: rf.Path, Err: fs.ErrNotExist}
				}
				r.File = f
			}
			if i == failAt {
				r.Err = errors.New(strings.Join(args[2:], " "))
			}
			res = append(res, r)
			if r.Err != nil {
				break
			}
		}
		return Prepared{Txn: txn, Results: res}, nil
	case "links":
		var links []LinkState
		for _, kv := range args {
			k, v, _ := strings.Cut(kv, "=")
			links = append(links, LinkState{Index: ifIndex(k), Name: k, Up: v == "up"})
		}
		return LinkReport{Full: true, Links: links}, nil
	case "link":
		return LinkReport{Links: []LinkState{{Index: ifIndex(args[0]), Name: args[0], Up: args[1] == "up", Gone: args[1] == "gone"}}}, nil
	case "recv":
		return w.advert(args[0], args[1:])
	case "tick":
		return Tick{}, nil
	case "stop":
		return Stop{}, nil
	case "frame":
		g := w.runningGroup(args[0])
		if g == nil || len(args) < 3 {
			return nil, fmt.Errorf("frame G SRC MAC: no running group %s or too few words", args[0])
		}
		mac, err := net.ParseMAC(args[2])
		if err != nil {
			return nil, err
		}
		return WatchFrame{Interface: g.Interface, Src: netip.MustParseAddr(args[1]), MAC: mac, Count: 1}, nil
	case "claim":
		g := w.runningGroup(args[0])
		if g == nil || len(args) < 3 {
			return nil, fmt.Errorf("claim G VIP MAC [KIND [COUNT]]: no running group %s or too few words", args[0])
		}
		mac, err := net.ParseMAC(args[2])
		if err != nil {
			return nil, err
		}
		ev := ClaimFrame{Interface: g.Interface, VIP: netip.MustParseAddr(args[1]), MAC: mac, Kind: "arp-reply", Count: 1}
		if len(args) > 3 {
			ev.Kind = args[3]
		}
		if len(args) > 4 {
			if ev.Count, err = strconv.ParseUint(args[4], 10, 64); err != nil {
				return nil, err
			}
		}
		return ev, nil
	case "failed-add":
		g := w.runningGroup(args[0])
		if g == nil {
			return nil, fmt.Errorf("no running group %s", args[0])
		}
		return Failed{Effect: AddVIP{Group: g.Name, Interface: g.Interface, VIP: netip.MustParsePrefix(args[1])}, Err: errors.New("netlink says no")}, nil
	case "key":
		f, ok := w.files[args[0]]
		if !ok {
			return FileRead{Path: args[0], Err: &fs.PathError{Op: "open", Path: args[0], Err: fs.ErrNotExist}}, nil
		}
		return FileRead{Path: args[0], File: f}, nil
	case "report":
		r := wire.Report{Serving: args[0] == "serving"}
		if hw, err := net.ParseMAC(args[1]); err == nil {
			copy(r.MAC[:], hw)
		}
		return ReportChecked{Report: r}, nil
	case "load-avg":
		n, err := strconv.Atoi(args[0])
		return Load{PerMille: uint16(n)}, err
	case "neighbors":
		ev := Neighbors{Interface: args[0], MACs: map[netip.Addr]net.HardwareAddr{}}
		for _, kv := range args[1:] {
			a, m, _ := strings.Cut(kv, "=")
			hw, err := net.ParseMAC(m)
			if err != nil {
				return nil, err
			}
			ev.MACs[netip.MustParseAddr(a)] = hw
		}
		return ev, nil
	case "answer", "discovery":
		ev, err := w.mgmtMessage(now, name, args)
		w.lastMgmt = ev
		return ev, err
	case "again":
		return w.lastMgmt, nil
	}
	return nil, fmt.Errorf("unknown event %q", name)
}

// ifIndex is the fake host's interface index of a name.
func ifIndex(name string) int {
	if i := slices.Index([]string{"lo", "eth0", "eth1", "eth2"}, name); i >= 0 {
		return i + 1
	}
	return 100
}

func (w *world) runningGroup(name string) *plan.Group {
	p := w.node.Plan()
	if p == nil || p.VRRP == nil {
		return nil
	}
	for i := range p.VRRP.Groups {
		if p.VRRP.Groups[i].Name == name {
			return &p.VRRP.Groups[i]
		}
	}
	return nil
}

// advert builds a peer's advert for a running group.
func (w *world) advert(group string, args []string) (Event, error) {
	g := w.runningGroup(group)
	if g == nil {
		return nil, fmt.Errorf("no running group %s", group)
	}
	a := vrrp.Advert{Version: 3, Type: 1, VRID: uint8(g.VRID), Priority: 100,
		MaxAdvertInterval: uint16(g.AdvertInterval.D() / (10 * time.Millisecond))}
	for _, v := range g.VIPs {
		a.Addresses = append(a.Addresses, v.Addr())
	}
	src := g.Peers[0].Address
	ttl := 255
	dst := vrrp.GroupIPv4
	if src.Is6() {
		dst = vrrp.GroupIPv6
	}
	if g.Unicast != nil {
		dst = g.Source
	}
	sock := socketOf(g)
	for _, kv := range args {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "src":
			src = netip.MustParseAddr(v)
		case "prio":
			a.Priority = uint8(n)
		case "vrid":
			a.VRID = uint8(n)
		case "ttl":
			ttl = n
		case "dst":
			dst = netip.MustParseAddr(v)
		case "via": // read on group v's socket
			o := w.runningGroup(v)
			if o == nil {
				return nil, fmt.Errorf("no running group %s", v)
			}
			sock = socketOf(o)
		case "int":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, err
			}
			a.MaxAdvertInterval = uint16(d / (10 * time.Millisecond))
		default:
			return nil, fmt.Errorf("unknown recv key %q", k)
		}
	}
	form := vrrp.ChecksumPseudoHeader
	if src.Is6() {
		form = vrrp.ChecksumIPv6
	}
	data, err := a.Marshal(src, dst, form)
	if err != nil {
		return nil, err
	}
	return VRRPPacket{Socket: sock, Src: src, Dst: dst, TTL: ttl, Data: data}, nil
}

func (w *world) mgmtMessage(now time.Time, kind string, args []string) (Event, error) {
	name, addr := args[0], netip.MustParseAddr(args[1])
	var key []byte
	if len(args) > 2 && args[2] != "-" {
		var err error
		if key, err = hex.DecodeString(args[2]); err != nil {
			return nil, err
		}
	}
	w.seq++
	m := &wire.Message{Header: wire.Header{BootID: 77, Seq: w.seq, Time: now.UnixMilli()}}
	if kind == "answer" {
		m.Type = wire.TypeAnswer
		m.Answer = &wire.Answer{Cluster: "edge", Node: name, Health: wire.HealthAvailable, Load: 42}
		if len(args) > 3 { // a MAC: a version-2 answer, proxy serving
			hw, err := net.ParseMAC(args[3])
			if err != nil {
				return nil, err
			}
			m.Version = wire.Version2
			m.Answer.Report = &wire.Report{Serving: true}
			copy(m.Answer.Report.MAC[:], hw)
		}
	} else {
		m.Type = wire.TypeDiscovery
		m.Discovery = &wire.Discovery{Cluster: "edge", Node: name, IntervalMillis: 1000}
	}
	b, err := wire.Seal(m, key)
	if err != nil {
		return nil, err
	}
	p := w.node.Plan()
	if p == nil || p.Management == nil {
		return nil, errors.New("no management section running")
	}
	return MgmtPacket{Socket: mgmtSocketOf(p.Management), Src: addr, Data: b}, nil
}

// ---- Checks.

func (w *world) check(f []string) error {
	st := w.node.Status()
	switch f[0] {
	case "state":
		if stateOf(st) != f[1] {
			return fmt.Errorf("state %v, want %s", stateOf(st), f[1])
		}
	case "group-state":
		if st == nil {
			return errors.New("no status")
		}
		for _, g := range st.Groups {
			if g.Name != f[1] {
				continue
			}
			vips := "-"
			if len(g.VIPs) > 0 {
				vips = strings.Join(g.VIPs, ",")
			}
			got := g.State + " " + vips
			want := f[2] + " " + f[3]
			if got != want {
				return fmt.Errorf("group %s: %s, want %s", g.Name, got, want)
			}
			return nil
		}
		return fmt.Errorf("no group %s", f[1])
	case "unicast-peer":
		return checkUnicastPeer(st, f[1], f[2], f[3:])
	case "advert-first":
		a, ok := w.adverts[f[1]]
		if !ok {
			return fmt.Errorf("group %s sent no advert", f[1])
		}
		src, dst := a.Socket.Source, vrrp.GroupIPv4
		if a.Socket.IPv6 {
			dst = vrrp.GroupIPv6
		}
		ad, _, err := vrrp.Parse(a.Data, src, dst)
		if err != nil {
			return err
		}
		if got := ad.Addresses[0].String(); got != f[2] {
			return fmt.Errorf("the advert of %s lists %s first, want %s", f[1], got, f[2])
		}
	case "deadline":
		got := "none"
		if d := w.node.Deadline(); !d.IsZero() {
			got = d.Sub(t0).String()
		}
		want := f[1]
		if want != "none" {
			d, err := time.ParseDuration(want)
			if err != nil {
				return err
			}
			want = d.String()
		}
		if got != want {
			return fmt.Errorf("deadline %s, want %s", got, want)
		}
	case "alarms":
		var got []string
		for _, a := range st.Alarms {
			got = append(got, fmt.Sprintf("%s %s %s %s %d", a.Kind, a.Address, a.Where, a.MAC, a.Count))
		}
		want := strings.Split(strings.Join(f[1:], " "), ";")
		if len(f) == 2 && f[1] == "none" {
			want = nil
		}
		for i := range want {
			want[i] = strings.TrimSpace(want[i])
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("alarms %q, want %q", got, want)
		}
	case "last-reload":
		got := "none"
		if st != nil && st.LastReload != nil {
			got = st.LastReload.Result
		}
		if got != f[1] {
			return fmt.Errorf("last reload %s, want %s", got, f[1])
		}
	case "error":
		want := strings.Join(f[1:], " ")
		if w.result.Err == nil || !strings.Contains(w.result.Err.Error(), want) {
			return fmt.Errorf("last plan result error %v, want one containing %q", w.result.Err, want)
		}
	case "digest":
		b, err := w.encode(f[1])
		if err != nil {
			return err
		}
		p, err := plan.Decode(b)
		if err != nil {
			return err
		}
		if st == nil || st.Digest != p.Digest {
			return fmt.Errorf("running digest is not plan %s's", f[1])
		}
	case "table", "mgmt-active", "mgmt-stats":
		if st == nil || st.Management == nil {
			return errors.New("no management status")
		}
		ms := w.node.mgmt.status(w.node)
		if f[0] == "mgmt-stats" {
			c, _ := w.node.MgmtSnapshot()
			have := map[string]uint64{"reloads-ok": c.ReloadsOK, "reloads-refused": c.ReloadsRefused,
				"key-reloads": c.KeyReloads, "key-refused": c.KeyRefused, "table-writes": c.TableWrites,
				"answers": ms.Stats.AnswersReceived}
			for r, v := range ms.Stats.Drops {
				have["drop-"+r] = v
			}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				if got := strconv.FormatUint(have[k], 10); got != v {
					return fmt.Errorf("%s = %s, want %s", k, got, v)
				}
			}
			return nil
		}
		if f[0] == "mgmt-active" {
			if got := strconv.FormatBool(ms.Active); got != f[1] {
				return fmt.Errorf("management active %s, want %s", got, f[1])
			}
			return nil
		}
		for _, r := range ms.Nodes {
			if r.Name == f[1] {
				if string(r.Status) != f[2] {
					return fmt.Errorf("row %s is %s, want %s", f[1], r.Status, f[2])
				}
				return nil
			}
		}
		return fmt.Errorf("no row %s", f[1])
	}
	return nil
}

func stateOf(st *Status) string {
	if st == nil {
		return "none"
	}
	return st.State
}

// render writes an effect as the scenarios spell it.
func render(e Effect) string {
	switch e := e.(type) {
	case Prepare:
		steps := make([]string, len(e.Steps))
		for i, s := range e.Steps {
			steps[i] = render(s)
		}
		return fmt.Sprintf("prepare %d: %s", e.Txn, strings.Join(steps, "; "))
	case OpenVRRP:
		return "open " + sockName(e.Socket)
	case OpenMgmt:
		return fmt.Sprintf("open-mgmt %s:%d", e.Socket.Interface, e.Socket.Port)
	case EnsureLinkLocal:
		return fmt.Sprintf("link-local %s %v", e.Interface, e.Addr)
	case EnsureVMAC:
		return fmt.Sprintf("vmac-ensure %s on %s vrid %d %s", e.Name, e.Parent, e.VRID, map[bool]string{false: "ipv4", true: "ipv6"}[e.IPv6])
	case SetVMAC:
		if !e.Active {
			return "vmac-down " + e.Name
		}
		if e.LinkLocal.IsValid() {
			return fmt.Sprintf("vmac-up %s %v", e.Name, e.LinkLocal)
		}
		return "vmac-up " + e.Name
	case RemoveVMAC:
		return "vmac-remove " + e.Name
	case ReadFile:
		return "read " + e.Path
	case CheckWritable:
		return "writable " + e.Path
	case Forwarding:
		return renderForwarding(e.State)
	case ReadNeighbors:
		return "read-neighbors " + e.Interface
	case Rules:
		if e.State.IsZero() {
			return "rules none"
		}
		var vips []string
		for _, a := range e.State.DropVIPs {
			vips = append(vips, a.String())
		}
		return "rules drop " + strings.Join(vips, ",")
	case SendAdvert:
		if len(e.Data) < vrrp.HeaderLen {
			return "send MALFORMED"
		}
		via := ""
		if e.Socket.SendOnly {
			via = " via " + e.Socket.Interface
		}
		if !e.To.IsValid() {
			return fmt.Sprintf("send %s %d%s", e.Group, e.Data[2], via)
		}
		// The copy must parse at its destination: its checksum names it.
		if _, _, err := vrrp.Parse(e.Data, e.Socket.Source, e.To); err != nil {
			return fmt.Sprintf("send %s %d to %s %v%s BADSUM", e.Group, e.Data[2], e.Peer, e.To, via)
		}
		return fmt.Sprintf("send %s %d to %s %v%s", e.Group, e.Data[2], e.Peer, e.To, via)
	case AddVIP:
		return fmt.Sprintf("add %s %v", e.Interface, e.VIP)
	case RemoveVIP:
		return fmt.Sprintf("remove %s %v", e.Interface, e.VIP)
	case Announce:
		return fmt.Sprintf("announce %s %v", e.Interface, e.VIP)
	case CloseVRRP:
		return "close " + sockName(e.Socket)
	case CloseMgmt:
		return fmt.Sprintf("close-mgmt %s:%d", e.Socket.Interface, e.Socket.Port)
	case MgmtSend:
		return fmt.Sprintf("mgmt-send %v %v->%v", e.Type, e.From, e.To)
	case WriteTable:
		c := e.Table.Counts
		return fmt.Sprintf("table %s active=%v up=%d down=%d unseen=%d", e.Path, e.Table.Active, c.Up, c.Down, c.Unseen)
	case RemoveFile:
		return "rm " + e.Path
	case ReadLoad:
		return "read-load"
	case CheckReport:
		return fmt.Sprintf("check-report %v", e.Timeout)
	case Transition:
		return fmt.Sprintf("%s: %v->%v", e.Group, e.From, e.To)
	case Dropped:
		return fmt.Sprintf("drop %s %s", e.Group, e.Reason)
	case Received:
		return "recv " + e.Group
	case Reannounced:
		return "reannounced " + e.Group + " " + e.Reason
	case UnknownVRID:
		return "unknown-vrid " + sockName(e.Socket)
	case GroupState:
		if e.Removed {
			return "state " + e.Group + " removed"
		}
		return "state " + e.Group + " " + e.State
	case ActiveChanged:
		return fmt.Sprintf("active %v", e.Active)
	case FaultChanged:
		return fmt.Sprintf("fault %v", e.Fault)
	case InterfacesChanged:
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(e.Up)) {
			parts = append(parts, fmt.Sprintf("%s=%s", name, map[bool]string{true: "up", false: "down"}[e.Up[name]]))
		}
		return "interfaces " + strings.Join(parts, " ")
	case PlanResult:
		return "plan " + e.Result
	case Notify:
		from, reason := "", ""
		for _, kv := range e.Env {
			if v, ok := strings.CutPrefix(kv, "MWGC_FROM="); ok {
				from = v
			}
			if v, ok := strings.CutPrefix(kv, "MWGC_REASON="); ok {
				reason = v
			}
		}
		return fmt.Sprintf("notify %s %s: %s (from %s, %v): %s", e.Group, e.State, strings.Join(e.Command, " "), from, e.Timeout, reason)
	case Watch:
		return fmt.Sprintf("watch %s for %v", strings.Join(e.Interfaces, ","), e.Addresses)
	case WatchClaims:
		var parts []string
		for _, ifname := range slices.Sorted(maps.Keys(e.ByInterface)) {
			parts = append(parts, fmt.Sprintf("%s=%v", ifname, e.ByInterface[ifname]))
		}
		return "watch-claims " + strings.Join(parts, " ")
	case Impersonation:
		return fmt.Sprintf("impersonation %s %d", e.Kind, e.Count)
	case PolicyDisagreement:
		return fmt.Sprintf("disagree %s %v %s", e.Group, e.Peer, e.Reason)
	case KeyFileRefused:
		return "key-refused " + e.Path
	}
	return fmt.Sprintf("%T", e)
}

func sockName(s Socket) string {
	if s.SendOnly {
		return fmt.Sprintf("%s/%s/%v/send-only", s.Interface, s.Family(), s.Source)
	}
	return fmt.Sprintf("%s/%s/%v", s.Interface, s.Family(), s.Source)
}

// checkUnicastPeer compares a unicast peer's row of /status: keys
// received, last (the time of its last accepted advert, relative to t0, or
// "none") and drop-REASON.
func checkUnicastPeer(st *Status, group, peer string, kvs []string) error {
	if st == nil {
		return errors.New("no status")
	}
	for _, g := range st.Groups {
		if g.Name != group {
			continue
		}
		if g.Unicast == nil {
			return fmt.Errorf("group %s has no unicast status", group)
		}
		for _, p := range g.Unicast.Peers {
			if p.Name != peer {
				continue
			}
			have := map[string]string{"received": strconv.FormatUint(p.AdvertsReceived, 10), "last": "none"}
			if !p.LastAdvert.IsZero() {
				have["last"] = p.LastAdvert.Sub(t0).String()
			}
			for r, n := range p.Drops {
				have["drop-"+r] = strconv.FormatUint(n, 10)
			}
			for _, kv := range kvs {
				k, v, _ := strings.Cut(kv, "=")
				got, ok := have[k]
				if !ok {
					got = "0"
				}
				if got != v {
					return fmt.Errorf("%s/%s: %s = %s, want %s", group, peer, k, got, v)
				}
			}
			return nil
		}
		return fmt.Errorf("group %s has no unicast peer %s", group, peer)
	}
	return fmt.Errorf("no group %s", group)
}

// renderForwarding: "forwarding none", or the node rule ("node VIPS:PORTS
// ->PROXY") and the director's ("director l2|nat [hold] TARGET*SLOTS...",
// targets by MAC or address, "self" for its own slots).
func renderForwarding(s forward.State) string {
	var parts []string
	if n := s.Node; n != nil {
		parts = append(parts, fmt.Sprintf("node %v:%v->%d", n.VIPs, n.Ports, n.ProxyPort))
	}
	if d := s.Director; d != nil {
		mode := "nat"
		if d.L2 {
			mode = "l2"
		}
		if d.Hold {
			mode += " hold"
		}
		count := map[string]int{}
		for _, t := range d.Slots {
			k := "self"
			switch {
			case d.L2 && t.MAC != nil:
				k = t.MAC.String()
			case !d.L2 && t.Addr.IsValid():
				k = t.Addr.String()
			}
			count[k]++
		}
		var ts []string
		for _, k := range slices.Sorted(maps.Keys(count)) {
			ts = append(ts, fmt.Sprintf("%s*%d", k, count[k]))
		}
		parts = append(parts, "director "+mode+" "+strings.Join(ts, " "))
	}
	if len(parts) == 0 {
		return "forwarding none"
	}
	return "forwarding " + strings.Join(parts, "; ")
}
