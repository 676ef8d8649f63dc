package vrrp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The scenarios in testdata/scenarios.txt drive one router on a fake clock.
// Format, one statement a line ('#' starts a comment):
//
//	### name                      starts a scenario
//	config key=value ...          creates the router (keys below)
//	TIME EVENT [args] [=> ACTS]   feeds an event at t0+TIME; the actions must
//	                              be exactly ACTS ("; "-separated), none if
//	                              "=>" is missing
//	state NAME                    the router's state
//	deadline TIME|none            Deadline() relative to t0
//	stat NAME VALUE               a field of Stats (see statValue)
//	first-address ADDR            the first address our adverts carry
//	reason TEXT                   the last transition's reason contains TEXT
//
// Config keys: vrid prio src int preempt delay accept vips peers form
// unicast minttl, and reannounce=off holdoff=DUR refresh=DUR.
// Events: start, shutdown, tick, reconfig KEY=VALUE... (changes relative to
// the current config), recv KEY=VALUE... with keys src prio int ttl vrid
// addrs form (rfc9568|pseudo-header) dst, and raw mutations ver type count
// badsum trailing.
// Actions: "send PRIO", "add VIPS", "remove VIPS", "announce VIPS" (a
// takeover), "reannounce REASON VIPS", "FROM->TO", "drop REASON",
// "rejected".

var t0 = time.Unix(1_000_000, 0)

func TestScenarios(t *testing.T) {
	f, err := os.Open("testdata/scenarios.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type scenario struct {
		name  string
		line  int
		lines []string
		nums  []int
	}
	var all []*scenario
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "###"); ok {
			all = append(all, &scenario{name: strings.TrimSpace(name), line: n})
			continue
		}
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(all) == 0 {
			t.Fatalf("scenarios.txt:%d: statement before the first ### header", n)
		}
		s := all[len(all)-1]
		s.lines = append(s.lines, strings.TrimSpace(line))
		s.nums = append(s.nums, n)
	}
	if len(all) < 20 {
		t.Fatalf("only %d scenarios read", len(all))
	}
	for _, s := range all {
		t.Run(s.name, func(t *testing.T) {
			st := &scriptState{}
			for i, line := range s.lines {
				at := fmt.Sprintf("scenarios.txt:%d", s.nums[i])
				if err := runLine(t, st, line); err != nil {
					t.Fatalf("%s: %s\n%v", at, line, err)
				}
			}
		})
	}
}

type scriptState struct {
	r          *Router
	lastReason string // of the last Transition action
}

func runLine(t *testing.T, st *scriptState, line string) error {
	fields := strings.Fields(line)
	r := st.r
	rp := &st.r
	switch fields[0] {
	case "config":
		cfg := Config{AdvertInterval: time.Second, Preempt: true}
		if err := setConfig(&cfg, fields[1:]); err != nil {
			return err
		}
		nr, err := NewRouter(cfg)
		if err != nil {
			return err
		}
		*rp = nr
		return nil
	case "config-error":
		cfg := Config{AdvertInterval: time.Second, Preempt: true}
		want, args := "", fields[1:]
		for i, a := range args {
			if a == "=>" {
				want, args = strings.Join(args[i+1:], " "), args[:i]
				break
			}
		}
		if err := setConfig(&cfg, args); err != nil {
			return err
		}
		_, err := NewRouter(cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			return fmt.Errorf("NewRouter error %v, want one containing %q", err, want)
		}
		return nil
	}
	if r == nil {
		return fmt.Errorf("no config yet")
	}
	switch fields[0] {
	case "state":
		if got := r.State().String(); got != fields[1] {
			return fmt.Errorf("state %s, want %s", got, fields[1])
		}
		return nil
	case "deadline":
		got := "none"
		if d := r.Deadline(); !d.IsZero() {
			got = d.Sub(t0).String()
		}
		want := fields[1]
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
		return nil
	case "reason":
		want := strings.TrimSpace(strings.TrimPrefix(line, "reason"))
		if !strings.Contains(st.lastReason, want) {
			return fmt.Errorf("last transition reason %q does not contain %q", st.lastReason, want)
		}
		return nil
	case "first-address":
		// The address list our next advert carries starts with this one.
		if got := r.advert.Addresses[0].String(); got != fields[1] {
			return fmt.Errorf("first advert address %s, want %s", got, fields[1])
		}
		return nil
	case "stat":
		got, err := statValue(r.Stats(), fields[1])
		if err != nil {
			return err
		}
		if got != fields[2] {
			return fmt.Errorf("stat %s = %s, want %s", fields[1], got, fields[2])
		}
		return nil
	}

	offset, err := time.ParseDuration(fields[0])
	if err != nil {
		return fmt.Errorf("want a time, config, state, deadline or stat: %v", err)
	}
	now := t0.Add(offset)
	args, want := fields[2:], ""
	for i, a := range args {
		if a == "=>" {
			want, args = strings.Join(args[i+1:], " "), args[:i]
			break
		}
	}
	var ev Event
	switch fields[1] {
	case "start":
		ev = Start{}
	case "shutdown":
		ev = Shutdown{}
	case "tick":
		ev = Tick{}
	case "reconfig":
		cfg := r.Config()
		if err := setConfig(&cfg, args); err != nil {
			return err
		}
		ev = Reconfigure{Config: cfg}
	case "recv":
		p, err := buildPacket(r.Config(), args)
		if err != nil {
			return err
		}
		ev = p
	default:
		return fmt.Errorf("unknown event %q", fields[1])
	}
	var got []string
	for _, a := range r.Step(now, ev) {
		got = append(got, renderAction(a))
		if tr, ok := a.(Transition); ok {
			st.lastReason = tr.Reason
		}
	}
	var wantActs []string
	if want != "" {
		for _, w := range strings.Split(want, ";") {
			wantActs = append(wantActs, strings.Join(strings.Fields(w), " "))
		}
	}
	if diff := cmp.Diff(wantActs, got); diff != "" {
		return fmt.Errorf("actions (-want +got):\n%s", diff)
	}
	return nil
}

func renderAction(a Action) string {
	join := func(ps []netip.Prefix) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = p.String()
		}
		return strings.Join(s, ",")
	}
	switch a := a.(type) {
	case SendAdvert:
		if len(a.Data) < HeaderLen || a.Data[2] != a.Priority {
			return fmt.Sprintf("send MISMATCH % x", a.Data)
		}
		return fmt.Sprintf("send %d", a.Priority)
	case AddVIPs:
		return "add " + join(a.VIPs)
	case RemoveVIPs:
		return "remove " + join(a.VIPs)
	case Announce:
		if a.Reason != AnnounceTakeover {
			return "reannounce " + a.Reason.String() + " " + join(a.VIPs)
		}
		return "announce " + join(a.VIPs)
	case Transition:
		if a.Reason == "" {
			return "transition without a reason"
		}
		return a.From.String() + "->" + a.To.String()
	case Dropped:
		if a.Err == nil {
			return "drop without an error"
		}
		return "drop " + a.Reason.String()
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("%T", a)
}

func statValue(s Stats, name string) (string, error) {
	if rest, ok := strings.CutPrefix(name, "peer-drops."); ok {
		// peer-drops.ADDR.REASON
		i := strings.LastIndex(rest, ".")
		if i < 0 {
			return "", fmt.Errorf("want peer-drops.ADDR.REASON, got %q", name)
		}
		addr, reason := rest[:i], rest[i+1:]
		for _, p := range s.Peers {
			if p.Addr.String() != addr {
				continue
			}
			for _, d := range DropReasons() {
				if d.String() == reason {
					return strconv.FormatUint(p.Drops[d], 10), nil
				}
			}
			return "", fmt.Errorf("no drop reason %q", reason)
		}
		return "", fmt.Errorf("no peer %s", addr)
	}
	if reason, ok := strings.CutPrefix(name, "drops."); ok {
		for _, d := range DropReasons() {
			if d.String() == reason {
				return strconv.FormatUint(s.Drops[d], 10), nil
			}
		}
		return "", fmt.Errorf("no drop reason %q", reason)
	}
	if reason, ok := strings.CutPrefix(name, "announce."); ok {
		for _, a := range AnnounceReasons() {
			if a.String() == reason {
				return strconv.FormatUint(s.Announcements[a], 10), nil
			}
		}
		return "", fmt.Errorf("no announce reason %q", reason)
	}
	switch name {
	case "held-off":
		return strconv.FormatUint(s.ReannouncementsHeldOff, 10), nil
	case "sent":
		return strconv.FormatUint(s.AdvertsSent, 10), nil
	case "received":
		return strconv.FormatUint(s.AdvertsReceived, 10), nil
	case "transitions":
		return strconv.FormatUint(s.Transitions, 10), nil
	case "interval":
		return s.ActiveAdverInterval.String(), nil
	case "active":
		return s.ActiveAddr.String(), nil
	case "accept":
		return strconv.FormatBool(s.AcceptMode), nil
	case "priority":
		return strconv.Itoa(int(s.Priority)), nil
	case "mismatches":
		return strconv.FormatUint(s.AddressMismatches, 10), nil
	case "form.rfc9568":
		return strconv.FormatUint(s.ChecksumForms[ChecksumRFC9568], 10), nil
	case "form.pseudo-header":
		return strconv.FormatUint(s.ChecksumForms[ChecksumPseudoHeader], 10), nil
	case "form.ipv6":
		return strconv.FormatUint(s.ChecksumForms[ChecksumIPv6], 10), nil
	}
	return "", fmt.Errorf("unknown stat %q", name)
}

func keyValues(args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v = "true" // bare flags
		}
		m[k] = v
	}
	return m, nil
}

func parseAddrList(s string) ([]netip.Addr, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []netip.Addr
	for _, a := range strings.Split(s, ",") {
		ad, err := netip.ParseAddr(a)
		if err != nil {
			return nil, err
		}
		out = append(out, ad)
	}
	return out, nil
}

func setConfig(cfg *Config, args []string) error {
	kv, err := keyValues(args)
	if err != nil {
		return err
	}
	for k, v := range kv {
		var err error
		switch k {
		case "vrid", "prio":
			var n int
			n, err = strconv.Atoi(v)
			if k == "vrid" {
				cfg.VRID = uint8(n)
			} else {
				cfg.Priority = uint8(n)
			}
		case "src":
			cfg.Source, err = netip.ParseAddr(v)
		case "int":
			cfg.AdvertInterval, err = time.ParseDuration(v)
		case "delay":
			cfg.PreemptDelay, err = time.ParseDuration(v)
		case "preempt":
			cfg.Preempt, err = strconv.ParseBool(v)
		case "accept":
			cfg.AcceptMode, err = strconv.ParseBool(v)
		case "vips":
			cfg.VIPs = nil
			if v != "none" {
				for _, p := range strings.Split(v, ",") {
					var pf netip.Prefix
					if pf, err = netip.ParsePrefix(p); err != nil {
						break
					}
					cfg.VIPs = append(cfg.VIPs, pf)
				}
			}
		case "peers":
			cfg.Peers, err = parseAddrList(v)
		case "reannounce":
			cfg.Reannounce.Disabled = v == "off"
		case "holdoff":
			cfg.Reannounce.Holdoff, err = time.ParseDuration(v)
		case "refresh":
			cfg.Reannounce.Refresh, err = time.ParseDuration(v)
		case "unicast":
			cfg.Unicast, err = strconv.ParseBool(v)
		case "minttl":
			var n int
			n, err = strconv.Atoi(v)
			cfg.MinTTL = uint8(n)
		case "form":
			switch v {
			case "rfc9568":
				cfg.Checksum = ChecksumRFC9568
			case "pseudo-header":
				cfg.Checksum = ChecksumPseudoHeader
			case "ipv6":
				cfg.Checksum = ChecksumIPv6
			default:
				err = fmt.Errorf("unknown form %q", v)
			}
		default:
			err = fmt.Errorf("unknown config key %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s=%s: %v", k, v, err)
		}
	}
	return nil
}

// buildPacket makes a received advert; unset fields default to a valid
// advert for cfg from its first peer at the router's own priority.
func buildPacket(cfg Config, args []string) (Packet, error) {
	kv, _ := keyValues(args)
	a := Advert{Version: 3, Type: 1, VRID: cfg.VRID, Priority: cfg.Priority,
		MaxAdvertInterval: uint16(cfg.AdvertInterval / (10 * time.Millisecond))}
	for _, p := range cfg.VIPs {
		a.Addresses = append(a.Addresses, p.Addr())
	}
	p := Packet{TTL: 255}
	if len(cfg.Peers) > 0 {
		p.Src = cfg.Peers[0]
	}
	form := cfg.Checksum
	var err error
	for k, v := range kv {
		switch k {
		case "src":
			p.Src, err = netip.ParseAddr(v)
		case "dst":
			p.Dst, err = netip.ParseAddr(v)
		case "prio", "vrid", "ttl":
			var n int
			n, err = strconv.Atoi(v)
			switch k {
			case "prio":
				a.Priority = uint8(n)
			case "vrid":
				a.VRID = uint8(n)
			case "ttl":
				p.TTL = n
			}
		case "int":
			var d time.Duration
			d, err = time.ParseDuration(v)
			a.MaxAdvertInterval = uint16(d / (10 * time.Millisecond))
		case "addrs":
			a.Addresses, err = parseAddrList(v)
		case "form":
			form = map[string]ChecksumForm{"rfc9568": ChecksumRFC9568, "pseudo-header": ChecksumPseudoHeader, "ipv6": ChecksumIPv6}[v]
		}
		if err != nil {
			return p, fmt.Errorf("%s=%s: %v", k, v, err)
		}
	}
	dst := p.Dst
	if !dst.IsValid() {
		dst = GroupIPv4
		if p.Src.Is6() {
			dst = GroupIPv6
		}
	}
	data, err := a.Marshal(p.Src, dst, form)
	if err != nil {
		// Mutations below may need an advert Marshal refuses; build it raw.
		data = rawAdvert(a)
	}
	// Raw mutations after encoding; the message-only checksum is redone
	// unless badsum asks otherwise.
	mutated := false
	for k, v := range kv {
		n, _ := strconv.Atoi(v)
		switch k {
		case "ver":
			data[0] = byte(n)<<4 | data[0]&0x0f
		case "type":
			data[0] = data[0]&0xf0 | byte(n)
		case "count":
			data[3] = byte(n)
		case "trailing":
			data = append(data, make([]byte, n)...)
		case "zero-int":
			data[4], data[5] = 0, 0
		default:
			continue
		}
		mutated = true
	}
	if mutated || err != nil {
		data = reseal(data)
	}
	if _, bad := kv["badsum"]; bad {
		binary.BigEndian.PutUint16(data[6:], ^binary.BigEndian.Uint16(data[6:]))
	}
	p.Data = data
	return p, nil
}

func rawAdvert(a Advert) []byte {
	b := []byte{a.Version<<4 | a.Type, a.VRID, a.Priority, byte(len(a.Addresses)), byte(a.MaxAdvertInterval >> 8), byte(a.MaxAdvertInterval), 0, 0}
	for _, ad := range a.Addresses {
		if ad.Is4() {
			v := ad.As4()
			b = append(b, v[:]...)
		} else {
			v := ad.As16()
			b = append(b, v[:]...)
		}
	}
	return b
}
