package vrrp

import (
	"errors"
	"net/netip"
	"time"
)

// Temporary bodies so callers can compile against the contract.

func (a *Advert) Marshal(src, dst netip.Addr, form ChecksumForm) ([]byte, error) {
	return nil, errors.New("vrrp: not implemented yet")
}

func Parse(b []byte, src, dst netip.Addr) (*Advert, ChecksumForm, error) {
	return nil, 0, &ParseError{Reason: DropLength, Msg: "not implemented yet"}
}

type Router struct{ cfg Config }

func NewRouter(cfg Config) (*Router, error)             { return &Router{cfg: cfg}, nil }
func (r *Router) Step(now time.Time, ev Event) []Action { return nil }
func (r *Router) Deadline() time.Time                   { return time.Time{} }
func (r *Router) State() State                          { return StateInitialize }
func (r *Router) Stats() Stats                          { return Stats{} }
func (r *Router) Config() Config                        { return r.cfg }

type SyncGroup struct{ routers []*Router }

type MemberAction struct {
	Member int
	Action Action
}

func NewSyncGroup(routers ...*Router) *SyncGroup                             { return &SyncGroup{routers: routers} }
func (g *SyncGroup) Step(now time.Time, member int, ev Event) []MemberAction { return nil }
func (g *SyncGroup) Deadline() time.Time                                     { return time.Time{} }
func (g *SyncGroup) State() State                                            { return StateInitialize }
func (g *SyncGroup) Router(i int) *Router                                    { return g.routers[i] }
func (g *SyncGroup) Len() int                                                { return len(g.routers) }
