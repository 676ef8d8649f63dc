package mgmt

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/mgmt/engine"
)

// Metrics are read from the engine at scrape time, so they always agree
// with /status. Every drop reason is exported, zeros included, so that an
// alert on a reason works before it first happens.
var (
	descActive = prometheus.NewDesc("mwgc_mgmt_active",
		"1 while this node runs discovery (its VRRP sync group is Active).", nil, nil)
	descNodes = prometheus.NewDesc("mwgc_mgmt_nodes",
		"Members in this node's table by status (up, down, unseen); only the Active director's table is live.", []string{"status"}, nil)
	descNodeStatus = prometheus.NewDesc("mwgc_mgmt_node_status",
		"Status of each member in this node's table, one series per status (1 for the current one); only the Active director's table is live.", []string{"node", "status"}, nil)
	descAnswering = prometheus.NewDesc("mwgc_mgmt_directors_answered",
		"Directors this node currently answers.", nil, nil)
	descSent = prometheus.NewDesc("mwgc_mgmt_messages_sent_total",
		"Messages sent, by type (discovery, answer).", []string{"type"}, nil)
	descReceived = prometheus.NewDesc("mwgc_mgmt_messages_received_total",
		"Valid messages received, by type.", []string{"type"}, nil)
	descDrops = prometheus.NewDesc("mwgc_mgmt_drops_total",
		"Received datagrams dropped, by reason.", []string{"reason"}, nil)
	descSendErrors = prometheus.NewDesc("mwgc_mgmt_send_errors_total",
		"Messages the kernel refused to send.", nil, nil)
	descTableWrites = prometheus.NewDesc("mwgc_mgmt_table_writes_total",
		"Table snapshots handed to the table file writer.", nil, nil)
	descTableErrors = prometheus.NewDesc("mwgc_mgmt_table_write_errors_total",
		"Failed writes of the table file.", nil, nil)
	descReloads = prometheus.NewDesc("mwgc_mgmt_reloads_total",
		"Plan updates applied (ok) or refused.", []string{"result"}, nil)
	descKeyReloads = prometheus.NewDesc("mwgc_mgmt_key_reloads_total",
		"Key file changes noticed without a plan update: applied (ok) or refused (file unusable, old keys kept).", []string{"result"}, nil)
)

// Snapshot is what the metrics are made of: the status and the counters
// kept around the engine.
type Snapshot struct {
	Status                    Status
	ReloadsOK, ReloadsRefused uint64 // plan updates applied or refused
	KeyReloads, KeyRefused    uint64 // key file changes applied or refused
	TableWrites, TableErrors  uint64 // table file writes asked for, and failed
}

// NewCollector exports the management metrics read from snapshot at
// scrape time; while it reports false (no management protocol runs),
// nothing is exported.
func NewCollector(snapshot func() (Snapshot, bool)) prometheus.Collector {
	return &collector{snapshot: snapshot}
}

type collector struct{ snapshot func() (Snapshot, bool) }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descNodes, descNodeStatus, descAnswering, descSent, descReceived,
		descDrops, descSendErrors, descTableWrites, descTableErrors, descReloads, descKeyReloads} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.snapshot()
	if !ok {
		return
	}
	st := s.Status.Stats
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descActive, map[bool]float64{true: 1}[s.Status.Active])
	gauge(descNodes, float64(s.Status.Counts.Up), string(engine.StatusUp))
	gauge(descNodes, float64(s.Status.Counts.Down), string(engine.StatusDown))
	gauge(descNodes, float64(s.Status.Counts.Unseen), string(engine.StatusUnseen))
	for _, n := range s.Status.Nodes {
		for _, status := range []engine.Status{engine.StatusDown, engine.StatusUnseen, engine.StatusUp} {
			gauge(descNodeStatus, map[bool]float64{true: 1}[n.Status == status], n.Name, string(status))
		}
	}
	gauge(descAnswering, float64(len(s.Status.Answering)))
	counter(descSent, st.DiscoveriesSent, "discovery")
	counter(descSent, st.AnswersSent, "answer")
	counter(descReceived, st.DiscoveriesReceived, "discovery")
	counter(descReceived, st.AnswersReceived, "answer")
	for _, r := range engine.DropReasons {
		counter(descDrops, st.Drops[string(r)], string(r))
	}
	counter(descSendErrors, st.SendErrors)
	counter(descTableWrites, s.TableWrites)
	counter(descTableErrors, s.TableErrors)
	counter(descReloads, s.ReloadsOK, "ok")
	counter(descReloads, s.ReloadsRefused, "refused")
	counter(descKeyReloads, s.KeyReloads, "ok")
	counter(descKeyReloads, s.KeyRefused, "refused")
}
