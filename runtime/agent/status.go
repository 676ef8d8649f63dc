package agent

import (
	"encoding/json"
	"github.com/prometheus/client_golang/prometheus"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Status is the JSON document served on /status.
type Status struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Digest  string `json:"digest"`
	// State is the sync group's state: the node is Active for all groups
	// or none. "Fault" while an interface of the groups is down.
	State string `json:"state"`
	// InterfacesDown names the interfaces that hold the node in Fault.
	InterfacesDown []string      `json:"interfacesDown,omitempty"`
	Groups         []GroupStatus `json:"groups"`
	Management     any           `json:"management,omitempty"`
	LastReload     *reloadStatus `json:"lastReload,omitempty"`
	// Alarms are the impersonation alarms raised and not cleared.
	Alarms []AlarmStatus `json:"alarms"`
}

// GroupStatus is one VRRP group in Status.
type GroupStatus struct {
	Name           string            `json:"name"`
	VRID           int               `json:"vrid"`
	Interface      string            `json:"interface"`
	Family         string            `json:"family"`
	State          string            `json:"state"`
	VIPs           []string          `json:"vips"` // held on the interface now
	ConfiguredVIPs []string          `json:"configuredVips"`
	AdvertsSent    uint64            `json:"advertsSent"`
	AdvertsRecv    uint64            `json:"advertsReceived"`
	Transitions    uint64            `json:"transitions"`
	Drops          map[string]uint64 `json:"drops,omitempty"`
	// ActiveAddress is the Active's advert source as this router sees it.
	ActiveAddress string `json:"activeAddress,omitempty"`
	// ActiveInterval is the advert interval in use (learned while Backup).
	ActiveInterval string `json:"activeInterval,omitempty"`
	// Auth is the group's authentication; nil without.
	Auth *AuthStatus `json:"auth,omitempty"`
	// Peers: what each listed peer advertised against the plan.
	Peers []PeerStatus `json:"peers,omitempty"`
	// PendingPriority / PendingInterval: a raise that waits for PendingAt
	// (the plan's rolloutGrace).
	PendingPriority uint8     `json:"pendingPriority,omitempty"`
	PendingInterval string    `json:"pendingInterval,omitempty"`
	PendingAt       time.Time `json:"pendingAt,omitzero"`
}

func fillStats(gs *GroupStatus, st vrrp.Stats) {
	gs.AdvertsSent = st.AdvertsSent
	gs.AdvertsRecv = st.AdvertsReceived
	gs.Transitions = st.Transitions
	for _, r := range vrrp.DropReasons() {
		if n := st.Drops[r]; n > 0 {
			if gs.Drops == nil {
				gs.Drops = map[string]uint64{}
			}
			gs.Drops[r.String()] = n
		}
	}
	if st.ActiveAddr.IsValid() {
		gs.ActiveAddress = st.ActiveAddr.String()
	}
	if st.ActiveAdverInterval > 0 {
		gs.ActiveInterval = st.ActiveAdverInterval.String()
	}
}

// stateFaultName is the state /status reports for the node and every
// group while an interface is down.
const stateFaultName = "Fault"

type reloadStatus struct {
	At     time.Time `json:"at"`
	Result string    `json:"result"`
	Error  string    `json:"error,omitempty"`
}

// status builds the document; it runs in the loop, which owns the engine.
func (a *Agent) status() *Status {
	s := &Status{Cluster: a.plan.Cluster, Node: a.plan.Node, Digest: a.plan.Digest,
		State: vrrp.StateInitialize.String(), Groups: []GroupStatus{}}
	if a.sg != nil {
		s.State = a.sg.State().String()
	}
	fault := a.links.Fault()
	if fault {
		s.State = stateFaultName
		s.InterfacesDown = a.links.Down()
	}
	for _, m := range a.members {
		gs := GroupStatus{
			Name: m.group.Name, VRID: m.group.VRID, Interface: m.group.Interface, Family: m.group.Family,
			State: m.router.State().String(), VIPs: []string{}, ConfiguredVIPs: []string{},
		}
		for _, v := range m.heldList() {
			gs.VIPs = append(gs.VIPs, v.String())
		}
		for _, v := range m.group.VIPs {
			gs.ConfiguredVIPs = append(gs.ConfiguredVIPs, v.String())
		}
		if fault {
			gs.State = stateFaultName
		}
		st := m.router.Stats()
		fillStats(&gs, st)
		fillAuthStats(&gs, st)
		s.Groups = append(s.Groups, gs)
	}
	if a.mgmt != nil {
		s.Management = a.mgmt.Status()
	}
	s.Alarms = a.alarmStatus()
	if !a.lastReload.At.IsZero() {
		r := a.lastReload
		s.LastReload = &r
	}
	return s
}

// Status returns the agent's status, or nil when the loop is not running.
func (a *Agent) Status() *Status {
	if !a.running.Load() {
		return nil
	}
	reply := make(chan *Status, 1)
	select {
	case a.statusCh <- reply:
	case <-a.stop:
		return nil
	case <-time.After(2 * time.Second):
		return nil
	}
	select {
	case s := <-reply:
		return s
	case <-time.After(2 * time.Second):
		return nil
	}
}

// Handler serves /metrics, /status and /healthz.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		s := a.Status()
		if s == nil {
			http.Error(w, "agent not running", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		// Healthy when the loop answers: a stuck loop misses adverts.
		if a.Status() == nil {
			http.Error(w, "loop not answering", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// trackingRegisterer registers into the agent's registry and remembers
// what it registered, so a management service that is closed on reload
// takes its series with it and a later one can register them again.
type trackingRegisterer struct {
	reg        prometheus.Registerer
	mu         sync.Mutex
	collectors []prometheus.Collector
}

func (t *trackingRegisterer) Register(c prometheus.Collector) error {
	if err := t.reg.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.collectors = append(t.collectors, c)
	t.mu.Unlock()
	return nil
}

func (t *trackingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *trackingRegisterer) Unregister(c prometheus.Collector) bool {
	return t.reg.Unregister(c)
}

func (t *trackingRegisterer) unregisterAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.collectors {
		t.reg.Unregister(c)
	}
	t.collectors = nil
}
