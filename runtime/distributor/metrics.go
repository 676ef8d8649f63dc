package distributor

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/distrib"
)

// Metrics are read from Status at scrape time, so they agree with
// /status. Every reason is exported, zeros included.
var (
	descActive = prometheus.NewDesc("mwgc_distrib_active",
		"1 while this node programs the mapping as the Active director.", nil, nil)
	descHold = prometheus.NewDesc("mwgc_distrib_hold",
		"1 while a new Active holds the distributed traffic, waiting for the nodes' answers.", nil, nil)
	descNodeRule = prometheus.NewDesc("mwgc_distrib_node_rule",
		"1 while this node accepts forwarded VIP traffic (redirect to its proxy port).", nil, nil)
	descShare = prometheus.NewDesc("mwgc_distrib_node_share",
		"Fraction of the hash table mapped to each node (0 when it gets no traffic).", []string{"node"}, nil)
	descEligible = prometheus.NewDesc("mwgc_distrib_node_eligible",
		"1 when the node gets traffic; 0 with the reason in mwgc_distrib_nodes.", []string{"node"}, nil)
	descNodes = prometheus.NewDesc("mwgc_distrib_nodes",
		"Nodes by eligibility: \"eligible\", or the reason they get no traffic.", []string{"reason"}, nil)
	descMapping = prometheus.NewDesc("mwgc_distrib_mapping_info",
		"1, labelled with the digest of the mapping in the kernel (equal on every director for the same nodes).", []string{"digest"}, nil)
	descApplies = prometheus.NewDesc("mwgc_distrib_applies_total",
		"nftables transactions, by result (ok, error).", []string{"result"}, nil)
	descApplySeconds = prometheus.NewDesc("mwgc_distrib_apply_seconds",
		"Duration of the last successful nftables transaction.", nil, nil)
)

// Collector exports a node's distribution at scrape time: status returns
// the current Status (false: none to report).
type Collector struct {
	status     func() (Status, bool)
	ok, failed atomic.Uint64
	lastNanos  atomic.Int64
}

// NewCollector returns a collector reading status.
func NewCollector(status func() (Status, bool)) *Collector { return &Collector{status: status} }

// Applied counts one transaction of the executor.
func (m *Collector) Applied(err error, took time.Duration) {
	if err != nil {
		m.failed.Add(1)
		return
	}
	m.ok.Add(1)
	m.lastNanos.Store(int64(took))
}

func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descHold, descNodeRule, descShare, descEligible,
		descNodes, descMapping, descApplies, descApplySeconds} {
		ch <- d
	}
}

func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	s, ok := m.status()
	if !ok {
		s = Status{}
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge(descActive, b(s.Active))
	gauge(descHold, b(s.Hold))
	gauge(descNodeRule, b(s.NodeRule))
	for _, n := range s.Nodes {
		gauge(descShare, n.Share.Share, n.Name)
		gauge(descEligible, b(n.Eligible), n.Name)
	}
	gauge(descNodes, float64(s.Counts["eligible"]), "eligible")
	for _, r := range distrib.Reasons {
		gauge(descNodes, float64(s.Counts[r]), r)
	}
	if s.Digest != "" {
		gauge(descMapping, 1, s.Digest)
	}
	ch <- prometheus.MustNewConstMetric(descApplies, prometheus.CounterValue, float64(m.ok.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(descApplies, prometheus.CounterValue, float64(m.failed.Load()), "error")
	gauge(descApplySeconds, time.Duration(m.lastNanos.Load()).Seconds())
}
