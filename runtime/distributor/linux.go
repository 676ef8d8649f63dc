package distributor

import (
	"log/slog"
	"net"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/plan"
)

// LinuxKernel programs nftables with runtime/forward and reads the
// neighbour table with netlink, in the process's network namespace.
type LinuxKernel struct{ *forward.Driver }

// NewLinuxKernel returns the kernel of the current namespace.
func NewLinuxKernel() LinuxKernel { return LinuxKernel{forward.New()} }

// Neighbors maps the IPv4 neighbours of ifname that have a link-layer
// address (reachable, stale, delay, probe or permanent) to it.
func (LinuxKernel) Neighbors(ifname string) (map[netip.Addr]net.HardwareAddr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, err
	}
	list, err := netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	const valid = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT
	out := map[netip.Addr]net.HardwareAddr{}
	for _, n := range list {
		a, ok := netip.AddrFromSlice(n.IP)
		if ok && n.State&valid != 0 && len(n.HardwareAddr) == 6 {
			out[a.Unmap()] = n.HardwareAddr
		}
	}
	return out, nil
}

// Link returns the index and MAC of ifname.
func (LinuxKernel) Link(ifname string) (int, net.HardwareAddr, error) {
	in, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, nil, err
	}
	return in.Index, in.HardwareAddr, nil
}

// Service is the management protocol with the distribution riding on it:
// what mwgc-agent runs as its management service.
type Service struct {
	*mgmt.Service
	dist *Distributor
}

// StartManagement starts runtime/mgmt's Service and the distribution of p
// beside it; it has the shape of agent.StartManagement.
func StartManagement(p *plan.Plan, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	m, err := mgmt.Start(p, log, reg)
	if err != nil {
		return nil, err
	}
	d, err := New(p, m, NewLinuxKernel(), log.With("component", "distrib"), reg)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Service{Service: m, dist: d}, nil
}

// SetActive follows the sync group in both.
func (s *Service) SetActive(active bool) {
	s.Service.SetActive(active)
	s.dist.SetActive(active)
}

// Update applies a new plan to both; the management service decides
// whether the plan is acceptable.
func (s *Service) Update(p *plan.Plan) error {
	if err := s.Service.Update(p); err != nil {
		return err
	}
	return s.dist.Update(p)
}

// Close stops the distribution (tables removed), then the protocol.
func (s *Service) Close() error {
	derr := s.dist.Close()
	if err := s.Service.Close(); err != nil {
		return err
	}
	return derr
}

// ServiceStatus is the management status with the distribution beside
// it (the management fields stay where they were in /status).
type ServiceStatus struct {
	mgmt.Status
	Distribution *Status `json:"distribution,omitempty"`
}

// Status is what /status shows under "management".
func (s *Service) Status() any {
	st := ServiceStatus{Status: s.Service.Snapshot()}
	if ds := s.dist.Status(); ds.Mode != "" {
		st.Distribution = &ds
	}
	return st
}

// Distributor returns the distribution riding on the service.
func (s *Service) Distributor() *Distributor { return s.dist }
