// Package clusterview turns an agent's /status document into what an
// operator reads: the cluster page the agent serves and `mwgc status`.
// On the Active director that is every node of the cluster with its
// state, who holds the VIPs, each node's running plan digest against the
// one compiled for it (the roll-out), alarms and the last reload; on any
// other node the node itself and where the Active is.
//
// It reads the JSON, not the agent's Go types, so that `mwgc status` can
// show any agent, and fields other packages add to /status are shown
// generically instead of being dropped.
package clusterview

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// View is one node's status, ready to print.
type View struct {
	Cluster, Node, Digest string
	// State is the node's VRRP state (Active, Backup, Fault, Initialize).
	State  string
	Active bool
	// ActiveNode and ActiveAddress say who is Active as this node knows
	// it; ActiveManagement is the Active's management IP, where its own
	// cluster page may be reached.
	ActiveNode, ActiveAddress, ActiveManagement string
	InterfacesDown                              []string
	Groups                                      []Group
	// Nodes is the Active's table of every node (empty elsewhere).
	Nodes   []Node
	Rollout Rollout
	Alarms  []Alarm
	Reload  *Reload
	// Management summarises the management protocol on this node.
	Management string
	// Notify summarises the notify commands run, empty when none ran.
	Notify string
	// Extra holds the top-level fields this package does not know.
	Extra []Field
}

// Group is one VRRP group on this node.
type Group struct {
	Name, Interface, Family, State string
	VRID                           int
	// Held are the VIPs on the interface now; Configured those of the plan.
	Held, Configured []string
	// Holder names who holds the VIPs: this node, or the Active it hears.
	Holder         string
	ActiveInterval string
	AdvertsSent    uint64
	AdvertsRecv    uint64
	Transitions    uint64
	Drops          map[string]uint64
	Extra          []Field
}

// Node is one row of the Active's table.
type Node struct {
	Name, Address string
	Director      bool
	Self          bool
	// Status is up, down or unseen (the management protocol); for this
	// node, its VRRP state.
	Status   string
	Since    string
	LastSeen string
	Health   string
	Load     string
	// Digest is the plan the node runs (from its answers); Expected the
	// one compiled for it; InSync says whether they agree (unknown while
	// either is missing).
	Digest, Expected string
	InSync           Tri
	Restarts         int
	Extra            []Field
}

// Tri is yes, no or unknown.
type Tri int

const (
	Unknown Tri = iota
	Yes
	No
)

// Rollout counts the nodes that run the plan compiled for them.
type Rollout struct {
	Known            bool // the plan carries the compiled digests
	InSync, Total    int
	Behind, NoAnswer []string
}

// Alarm is something an operator should look at.
type Alarm struct {
	Severity string // "alarm" or "warning"
	Text     string
}

// Reload is the last plan reload.
type Reload struct {
	At, Result, Error string
}

// Field is a field shown as it is.
type Field struct {
	Key, Value string
}

// status is the part of the document this package reads by name.
type status struct {
	Cluster        string            `json:"cluster"`
	Node           string            `json:"node"`
	Digest         string            `json:"digest"`
	State          string            `json:"state"`
	InterfacesDown []string          `json:"interfacesDown"`
	Groups         []json.RawMessage `json:"groups"`
	Management     *mgmtStatus       `json:"management"`
	LastReload     *struct {
		At     time.Time `json:"at"`
		Result string    `json:"result"`
		Error  string    `json:"error"`
	} `json:"lastReload"`
	Rollout []struct {
		Node   string `json:"node"`
		Digest string `json:"digest"`
	} `json:"rollout"`
	Notify *struct {
		OK          uint64 `json:"ok"`
		Failed      uint64 `json:"failed"`
		Dropped     uint64 `json:"dropped"`
		LastFailure string `json:"lastFailure"`
	} `json:"notify"`
}

type groupStatus struct {
	Name           string            `json:"name"`
	VRID           int               `json:"vrid"`
	Interface      string            `json:"interface"`
	Family         string            `json:"family"`
	State          string            `json:"state"`
	VIPs           []string          `json:"vips"`
	ConfiguredVIPs []string          `json:"configuredVips"`
	AdvertsSent    uint64            `json:"advertsSent"`
	AdvertsRecv    uint64            `json:"advertsReceived"`
	Transitions    uint64            `json:"transitions"`
	Drops          map[string]uint64 `json:"drops"`
	ActiveAddress  string            `json:"activeAddress"`
	ActiveNode     string            `json:"activeNode"`
	ActiveInterval string            `json:"activeInterval"`
}

var knownGroupFields = []string{"name", "vrid", "interface", "family", "state", "vips", "configuredVips", "advertsSent",
	"advertsReceived", "transitions", "drops", "activeAddress", "activeNode", "activeInterval"}

type mgmtStatus struct {
	Active        bool              `json:"active"`
	Address       string            `json:"address"`
	Port          int               `json:"port"`
	Interval      string            `json:"interval"`
	DeadAfter     int               `json:"deadAfter"`
	Authenticated bool              `json:"authenticated"`
	Answering     []string          `json:"answering"`
	Nodes         []json.RawMessage `json:"nodes"`
	Stats         struct {
		Drops      map[string]uint64 `json:"drops"`
		SendErrors uint64            `json:"sendErrors"`
	} `json:"stats"`
}

type mgmtNode struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	Director  bool      `json:"director"`
	Self      bool      `json:"self"`
	Status    string    `json:"status"`
	Since     time.Time `json:"since"`
	LastSeen  time.Time `json:"lastSeen"`
	Health    string    `json:"health"`
	Load      *int      `json:"loadPerMille"`
	Digest    string    `json:"digest"`
	Addresses []string  `json:"addresses"`
	Restarts  int       `json:"restarts"`
}

var knownNodeFields = []string{"name", "address", "director", "self", "status", "since", "firstSeen", "lastSeen", "health",
	"loadPerMille", "digest", "addresses", "bootId", "restarts"}

var knownTopFields = []string{"cluster", "node", "digest", "state", "interfacesDown", "groups", "management", "lastReload", "rollout", "notify"}

// MaxSize bounds a status document (a thousand nodes are about 400 KB).
const MaxSize = 8 << 20

// Parse reads a /status document; now is when it was fetched, for ages.
func Parse(data []byte, now time.Time) (*View, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("status document of %d bytes, more than %d", len(data), MaxSize)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	var st status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if st.Node == "" {
		return nil, fmt.Errorf("status: no node name: not an mwgc-agent status document")
	}
	v := &View{Cluster: st.Cluster, Node: st.Node, Digest: st.Digest, State: st.State, InterfacesDown: st.InterfacesDown}
	v.Active = st.State == "Active"
	for _, raw := range st.Groups {
		v.addGroup(raw)
	}
	if m := st.Management; m != nil {
		v.addManagement(m, now)
	}
	v.nameHolders()
	v.addRollout(st)
	if r := st.LastReload; r != nil {
		v.Reload = &Reload{At: age(r.At, now), Result: r.Result, Error: r.Error}
	}
	if n := st.Notify; n != nil {
		v.Notify = fmt.Sprintf("%d ran, %d failed, %d dropped", n.OK+n.Failed, n.Failed, n.Dropped)
	}
	v.alarms(st)
	for _, k := range sortedKeys(top) {
		if slices.Contains(knownTopFields, k) {
			continue
		}
		v.Extra = append(v.Extra, Field{Key: k, Value: compact(top[k])})
		if strings.Contains(strings.ToLower(k), "alarm") {
			v.genericAlarms(k, top[k])
		}
	}
	return v, nil
}

func (v *View) addGroup(raw json.RawMessage) {
	var g groupStatus
	if json.Unmarshal(raw, &g) != nil {
		v.Extra = append(v.Extra, Field{Key: "group", Value: compact(raw)})
		return
	}
	out := Group{Name: g.Name, VRID: g.VRID, Interface: g.Interface, Family: g.Family, State: g.State,
		Held: g.VIPs, Configured: g.ConfiguredVIPs, ActiveInterval: g.ActiveInterval,
		AdvertsSent: g.AdvertsSent, AdvertsRecv: g.AdvertsRecv, Transitions: g.Transitions, Drops: g.Drops,
		Extra: extraFields(raw, knownGroupFields)}
	switch {
	case g.State == "Active":
		out.Holder = v.Node + " (this node)"
	case g.ActiveNode != "":
		out.Holder = g.ActiveNode + " (" + g.ActiveAddress + ")"
	case g.ActiveAddress != "":
		out.Holder = g.ActiveAddress
	default:
		out.Holder = "none heard"
	}
	if v.ActiveAddress == "" && g.State != "Active" && g.ActiveAddress != "" {
		v.ActiveNode, v.ActiveAddress = g.ActiveNode, g.ActiveAddress
	}
	v.Groups = append(v.Groups, out)
}

func (v *View) addManagement(m *mgmtStatus, now time.Time) {
	auth := "authenticated"
	if !m.Authenticated {
		auth = "unauthenticated"
	}
	role := "answering " + orNone(strings.Join(m.Answering, ", "))
	if m.Active {
		role = "discovering (Active)"
	}
	v.Management = fmt.Sprintf("%s:%d, every %s, down after %d missed, %s; %s", m.Address, m.Port, m.Interval, m.DeadAfter, auth, role)
	for _, raw := range m.Nodes {
		var n mgmtNode
		if json.Unmarshal(raw, &n) != nil {
			continue
		}
		if v.ActiveNode != "" && n.Name == v.ActiveNode {
			v.ActiveManagement = n.Address
		}
		if v.ActiveNode == "" && v.ActiveAddress != "" && (n.Address == v.ActiveAddress || hasAddr(n.Addresses, v.ActiveAddress)) {
			v.ActiveNode, v.ActiveManagement = n.Name, n.Address
		}
		if !m.Active {
			continue // only the Active's table is authoritative
		}
		row := Node{Name: n.Name, Address: n.Address, Director: n.Director, Self: n.Self, Status: n.Status,
			Since: age(n.Since, now), LastSeen: age(n.LastSeen, now), Health: n.Health, Digest: n.Digest,
			Restarts: n.Restarts, Extra: extraFields(raw, knownNodeFields)}
		if n.Load != nil {
			row.Load = fmt.Sprintf("%d‰", *n.Load)
		}
		if n.Self {
			row.Status, row.Digest = v.State, v.Digest
		}
		v.Nodes = append(v.Nodes, row)
	}
	if m.Active {
		v.ActiveNode, v.ActiveManagement = v.Node, m.Address
	}
}

// nameHolders names the Active in the groups' "held by" once the
// management members told which node has its address.
func (v *View) nameHolders() {
	if v.ActiveNode == "" || v.Active {
		return
	}
	for i := range v.Groups {
		if g := &v.Groups[i]; g.Holder == v.ActiveAddress {
			g.Holder = v.ActiveNode + " (" + v.ActiveAddress + ")"
		}
	}
}

func hasAddr(prefixes []string, addr string) bool {
	for _, p := range prefixes {
		if a, _, _ := strings.Cut(p, "/"); a == addr {
			return true
		}
	}
	return false
}

// addRollout compares each node's running digest with the one compiled
// for it, as the plan of this node lists them.
func (v *View) addRollout(st status) {
	if len(st.Rollout) == 0 {
		return
	}
	v.Rollout.Known = true
	expected := map[string]string{}
	for _, r := range st.Rollout {
		expected[r.Node] = r.Digest
	}
	for i := range v.Nodes {
		n := &v.Nodes[i]
		n.Expected = expected[n.Name]
		switch {
		case n.Expected == "":
		case n.Digest == "" && n.Status != "up" && !n.Self:
			v.Rollout.NoAnswer = append(v.Rollout.NoAnswer, n.Name)
		case n.Digest == n.Expected:
			n.InSync = Yes
			v.Rollout.InSync++
		default:
			n.InSync = No
			v.Rollout.Behind = append(v.Rollout.Behind, n.Name)
		}
		if n.Expected != "" {
			v.Rollout.Total++
		}
	}
}

// Summary says in one line how far the roll-out is.
func (r Rollout) Summary() string {
	if !r.Known {
		return "unknown: this node's plan lists no compiled digests"
	}
	if r.Total == 0 {
		return "shown on the Active director"
	}
	s := fmt.Sprintf("%d of %d nodes run the plan compiled for them", r.InSync, r.Total)
	if len(r.Behind) > 0 {
		s += "; different: " + strings.Join(r.Behind, ", ")
	}
	if len(r.NoAnswer) > 0 {
		s += "; not answering: " + strings.Join(r.NoAnswer, ", ")
	}
	return s
}

// age prints a time as how long ago, to the second.
func age(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return t.UTC().Format(time.RFC3339)
	}
	return d.String() + " ago"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// extraFields lists the fields of a JSON object not in known.
func extraFields(raw json.RawMessage, known []string) []Field {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []Field
	for _, k := range sortedKeys(m) {
		if !slices.Contains(known, k) {
			out = append(out, Field{Key: k, Value: compact(m[k])})
		}
	}
	return out
}

// compact prints a JSON value on one line, strings without quotes.
func compact(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var x any
	if json.Unmarshal(raw, &x) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(x)
	return string(b)
}
