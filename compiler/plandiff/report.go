package plandiff

// Op says what happens to a thing, in the terraform manner.
type Op string

const (
	OpAdd     Op = "add"
	OpRemove  Op = "remove"
	OpUpdate  Op = "update"
	OpReplace Op = "replace" // removed and added again: a new virtual router
)

// Symbol is the marker printed before a change: + - ~ -/+.
func (o Op) Symbol() string {
	switch o {
	case OpAdd:
		return "+"
	case OpRemove:
		return "-"
	case OpReplace:
		return "-/+"
	}
	return "~"
}

// Report is what `mwgc plan` prints: every difference between two
// compiled repositories and what it does on the wire.
type Report struct {
	// Base and Head label the two sides (a git ref, a directory).
	Base string `json:"base"`
	Head string `json:"head"`
	// Segments holds changes of segments, which no plan carries.
	Segments []Change  `json:"segments"`
	Clusters []Cluster `json:"clusters"`
	Summary  Summary   `json:"summary"`
}

// Change is one difference and its consequence.
type Change struct {
	Op Op `json:"op"`
	// Subject names what changes: "node dir-b", "group proxy",
	// "VIP 192.0.2.100 of group proxy", "management", "segment lan".
	Subject string `json:"subject"`
	// Detail says how: "priority 100 → 200". Empty for additions and
	// removals that need no more words.
	Detail string `json:"detail,omitempty"`
	// Effect is what the change does on the wire, or "no change on the
	// wire".
	Effect string `json:"effect"`
	// Wire is false when the change sends nothing new and moves nothing.
	Wire bool `json:"wire"`
}

// Cluster holds the changes of one cluster.
type Cluster struct {
	Name    string   `json:"name"`
	Op      Op       `json:"op"`
	Mode    string   `json:"mode"`
	Changes []Change `json:"changes"`
	// Active is who holds the VIPs before and after; nil when the cluster
	// runs VRRP on neither side.
	Active *Active `json:"active,omitempty"`
	// Plans lists the nodes whose plan is added, removed or changed, with
	// the digests to watch on the cluster page during the roll-out.
	Plans []PlanChange `json:"plans"`
	// Unchanged counts the nodes whose plan stays byte for byte.
	Unchanged int `json:"unchanged"`
	// Order holds roll-out advice where the order of the plans landing
	// matters.
	Order []string `json:"order,omitempty"`
}

// Active is the cluster's Active director before and after the change
// (all groups of a node move together), with the VIPs that move.
type Active struct {
	Before string `json:"before"`
	After  string `json:"after"`
	Moves  bool   `json:"moves"`
	// Reason says why it moves or why it does not although a better
	// router exists.
	Reason string   `json:"reason,omitempty"`
	VIPs   []string `json:"vips,omitempty"`
	// Assumed is set when the Active before is the best priority by
	// assumption: with preemption off, whoever won stays Active.
	Assumed bool `json:"assumed,omitempty"`
}

// PlanChange is one node's plan file.
type PlanChange struct {
	Node   string `json:"node"`
	Op     Op     `json:"op"`
	Before string `json:"digestBefore,omitempty"`
	After  string `json:"digestAfter,omitempty"`
}

// Summary counts what the plan does.
type Summary struct {
	ClustersAdded   int `json:"clustersAdded"`
	ClustersChanged int `json:"clustersChanged"`
	ClustersRemoved int `json:"clustersRemoved"`
	PlansAdded      int `json:"plansAdded"`
	PlansChanged    int `json:"plansChanged"`
	PlansRemoved    int `json:"plansRemoved"`
	PlansUnchanged  int `json:"plansUnchanged"`
	// Wire is true when any change sends something new or moves a VIP.
	Wire bool `json:"wire"`
	// ActiveMoves names the clusters whose Active changes.
	ActiveMoves []string `json:"activeMoves"`
}

// HasChanges reports whether there is anything to apply: the basis of
// exit status 2 (terraform plan -detailed-exitcode).
func (r *Report) HasChanges() bool {
	return len(r.Segments) > 0 || len(r.Clusters) > 0
}

func (r *Report) summarize() {
	s := Summary{ActiveMoves: []string{}}
	for _, c := range r.Segments {
		s.Wire = s.Wire || c.Wire
	}
	for _, cl := range r.Clusters {
		switch cl.Op {
		case OpAdd:
			s.ClustersAdded++
		case OpRemove:
			s.ClustersRemoved++
		default:
			s.ClustersChanged++
		}
		for _, p := range cl.Plans {
			switch p.Op {
			case OpAdd:
				s.PlansAdded++
			case OpRemove:
				s.PlansRemoved++
			default:
				s.PlansChanged++
			}
		}
		s.PlansUnchanged += cl.Unchanged
		for _, c := range cl.Changes {
			s.Wire = s.Wire || c.Wire
		}
		if cl.Active != nil && cl.Active.Moves {
			s.ActiveMoves = append(s.ActiveMoves, cl.Name)
		}
	}
	r.Summary = s
}
