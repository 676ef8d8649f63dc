package agent

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mwgc/mwgc/runtime/buildinfo"
	"github.com/mwgc/mwgc/runtime/node"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// metrics are the agent's Prometheus series, all under "mwgc_agent_".
type metrics struct {
	state            *prometheus.GaugeVec
	transitions      *prometheus.CounterVec
	advertsSent      *prometheus.CounterVec
	advertsReceived  *prometheus.CounterVec
	drops            *prometheus.CounterVec
	unknownVRID      *prometheus.CounterVec
	sendErrors       *prometheus.CounterVec
	vipErrors        *prometheus.CounterVec
	connectionsEnded *prometheus.CounterVec
	announcements    *prometheus.CounterVec
	reannouncements  *prometheus.CounterVec
	reloads          *prometheus.CounterVec
	planInfo         *prometheus.GaugeVec
	syncActive       prometheus.Gauge
	fault            prometheus.Gauge
	interfaceUp      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "mwgc_agent"
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "state",
			Help: "VRRP state per group: 0 Initialize, 1 Backup, 2 Active, 3 Fault (an interface of the node is down).",
		}, []string{"group"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "transitions_total",
			Help: "VRRP state transitions per group.",
		}, []string{"group", "from", "to"}),
		advertsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "adverts_sent_total",
			Help: "VRRP adverts written to the socket per group (priority 0 included; a unicast group writes one copy per peer).",
		}, []string{"group"}),
		advertsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "adverts_received_total",
			Help: "VRRP packets delivered to a group's engine (dropped ones included, see drops_total).",
		}, []string{"group"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "drops_total",
			Help: "VRRP packets a group's engine dropped, by reason.",
		}, []string{"group", "reason"}),
		unknownVRID: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "unknown_vrid_total",
			Help: "VRRP packets for a VRID this node does not run (or too short to carry one), per socket.",
		}, []string{"interface", "family"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "send_errors_total",
			Help: "Adverts the kernel refused to send (e.g. link down), per group.",
		}, []string{"group"}),
		connectionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "connections_ended_total",
			Help: "TCP connections to VIPs this node released that it ended (their clients reach the new holder), per group.",
		}, []string{"group"}),
		vipErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "vip_errors_total",
			Help: "Failed attempts to add or remove a VIP, per group and operation.",
		}, []string{"group", "op"}),
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "announcements_total",
			Help: "Gratuitous ARPs / unsolicited neighbour advertisements sent per group.",
		}, []string{"group"}),
		reannouncements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "reannouncements_total",
			Help: "Re-announcement bursts per group and reason: lower-priority (another router acted as Active), pause (this agent was stopped or starved), refresh, vip-claim (one announcement answering another host that claimed a VIP this Active holds).",
		}, []string{"group", "reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "reloads_total",
			Help: "Plan reloads by result: ok (applied), unchanged (same content), refused (invalid plan), failed (could not be applied; old plan kept).",
		}, []string{"result"}),
		planInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "plan_info",
			Help: "The running plan (value 1).",
		}, []string{"cluster", "node", "digest"}),
		syncActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "active",
			Help: "1 while this node's sync group is Active.",
		}),
		fault: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "fault",
			Help: "1 while an interface the node's VRRP groups run on is down: the node is out of the election for every group.",
		}),
		interfaceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "interface_up",
			Help: "Link state of each interface the node's VRRP groups run on: 1 up (admin up, carrier, operationally up), 0 down or missing.",
		}, []string{"interface"}),
	}
	reg.MustRegister(m.state, m.transitions, m.advertsSent, m.advertsReceived, m.drops,
		m.unknownVRID, m.sendErrors, m.vipErrors, m.connectionsEnded, m.announcements, m.reannouncements, m.reloads, m.planInfo, m.syncActive,
		m.fault, m.interfaceUp)
	for _, r := range []string{"ok", "unchanged", "refused", "failed"} {
		m.reloads.WithLabelValues(r)
	}
	info := buildinfo.Read()
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info",
		Help: "The running build (value 1): module version, VCS revision, Go release.",
	}, []string{"version", "revision", "go_version"})
	buildInfo.WithLabelValues(info.Version, info.Revision, info.GoVersion).Set(1)
	reg.MustRegister(buildInfo)
	return m
}

// registerProcessCollectors adds the usual go_ and process_ series.
func registerProcessCollectors(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// report turns the node's reports into metrics.
func (a *Agent) report(e node.Effect) {
	m := a.met
	switch e := e.(type) {
	case node.Transition:
		m.transitions.WithLabelValues(e.Group, e.From.String(), e.To.String()).Inc()
	case node.Dropped:
		m.drops.WithLabelValues(e.Group, e.Reason).Inc()
	case node.Received:
		a.group(e.Group).recv.Inc()
	case node.Reannounced:
		m.reannouncements.WithLabelValues(e.Group, e.Reason).Inc()
	case node.UnknownVRID:
		if s := a.vrrp[e.Socket]; s != nil {
			s.unknown.Inc()
		} else {
			m.unknownVRID.WithLabelValues(e.Socket.Interface, e.Socket.Family()).Inc()
		}
	case node.GroupState:
		if e.Removed {
			m.state.DeleteLabelValues(e.Group)
			m.sendErrors.DeleteLabelValues(e.Group)
			m.vipErrors.DeleteLabelValues(e.Group, "add")
			m.vipErrors.DeleteLabelValues(e.Group, "remove")
			delete(a.groups, e.Group)
			a.lastRoute = lastRoute{}
			a.forgetUnicast(e.Group)
			return
		}
		a.group(e.Group)
		m.state.WithLabelValues(e.Group).Set(stateValue(e.State))
	case node.ActiveChanged:
		m.syncActive.Set(boolValue(e.Active))
	case node.FaultChanged:
		m.fault.Set(boolValue(e.Fault))
	case node.InterfacesChanged:
		m.interfaceUp.Reset()
		for name, up := range e.Up {
			m.interfaceUp.WithLabelValues(name).Set(boolValue(up))
		}
	default:
		a.log.Warn("agent: an effect it does not know", "effect", fmt.Sprintf("%T", e))
	}
}

// stateValue is mwgc_agent_state's value for a state name.
func stateValue(s string) float64 {
	switch s {
	case vrrp.StateBackup.String():
		return 1
	case vrrp.StateActive.String():
		return 2
	case node.StateFault:
		return 3
	}
	return 0
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
