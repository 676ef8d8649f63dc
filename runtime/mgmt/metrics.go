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

type collector struct{ s *Service }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descNodes, descAnswering, descSent, descReceived,
		descDrops, descSendErrors, descTableWrites, descTableErrors, descReloads, descKeyReloads} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.Lock()
	active := s.eng.Active()
	st := s.eng.Stats()
	counts := countNodes(s.eng.Table())
	answering := len(s.eng.Directors())
	cn := s.counters
	s.mu.Unlock()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descActive, map[bool]float64{true: 1}[active])
	gauge(descNodes, float64(counts.Up), string(engine.StatusUp))
	gauge(descNodes, float64(counts.Down), string(engine.StatusDown))
	gauge(descNodes, float64(counts.Unseen), string(engine.StatusUnseen))
	gauge(descAnswering, float64(answering))
	counter(descSent, st.DiscoveriesSent, "discovery")
	counter(descSent, st.AnswersSent, "answer")
	counter(descReceived, st.DiscoveriesReceived, "discovery")
	counter(descReceived, st.AnswersReceived, "answer")
	for _, r := range engine.DropReasons {
		counter(descDrops, st.Drops[r], string(r))
	}
	counter(descSendErrors, cn.sendErrors)
	counter(descTableWrites, cn.tableWrites)
	counter(descTableErrors, s.table.errors.Load())
	counter(descReloads, cn.reloadsOK, "ok")
	counter(descReloads, cn.reloadsRefused, "refused")
	counter(descKeyReloads, cn.keyReloads, "ok")
	counter(descKeyReloads, cn.keyRefused, "refused")
}
