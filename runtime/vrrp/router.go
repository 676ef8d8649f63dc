package vrrp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// Router is one VRRP virtual router (RFC 9568 §6): a pure state machine.
// It is not safe for concurrent use.
type Router struct {
	cfg   Config
	is4   bool
	state State

	// activeAdverInterval is Active_Adver_Interval: ours while Active, the
	// Active's (from its adverts) while Backup.
	activeAdverInterval time.Duration
	adverTimer          time.Time // Active: next advert due; zero when stopped
	downTimer           time.Time // Backup: Active_Down_Timer; zero when stopped
	// preemptSince is when this Backup first heard the current lower-
	// priority Active; zero when not waiting out PreemptDelay.
	preemptSince time.Time
	activeAddr   netip.Addr
	// heard is when this Backup last accepted an advert of the Active it
	// follows (not a priority 0, not one it preempts): the sync group's
	// evidence that the node's Active is alive.
	heard time.Time
	// heldDue is when the down timer ran out while the sync group held this
	// member back (SyncGroup.holdBack); zero when not held.
	heldDue time.Time
	// leaving is set while the Backup's down timer runs Skew_Time only,
	// after the Active sent priority 0.
	leaving bool
	// preemptingPriority/Addr describe the last lower-priority Active this
	// Backup ignored to preempt it (0: none since the last accepted advert).
	preemptingPriority uint8
	preemptingAddr     netip.Addr

	re reannounceState // while Active: when to announce the VIPs again

	// planned is the configuration asked for; cfg is the one in force. They
	// differ while a raised priority or lengthened interval waits for
	// PolicyGrace (until pendingAt).
	planned   Config
	pendingAt time.Time

	peers map[netip.Addr]*peerState
	auth  *auth.Authenticator // nil without Config.Auth
	// prevKeys are secrets of key ids whose key changed in place: signed
	// with until signPrevUntil, verified until prevUntil (authn.go).
	prevKeys                 []auth.Key
	signPrevUntil, prevUntil time.Time
	lastKeyStep              time.Time
	advert                   Advert // template for our adverts, Addresses from cfg.VIPs
	stats                    Stats
	rx                       Advert // reused for parsing
	// notes are Disagreed actions of the current receive, put first.
	notes []Action
	// lastAnswer is when an advert was last sent out of cadence in answer
	// to a received one; answers are limited so a flood is not amplified.
	lastAnswer time.Time
	// encoded is the buffer unsigned adverts are encoded in; lastAdvert
	// is the SendAdvert handed out last (boxed once), again while the
	// advert does not change (unsignedAdvert).
	encoded    []byte
	lastAdvert Action
}

// Rejected reports an event the router refused (a Reconfigure that breaks
// the rules); nothing changed.
type Rejected struct{ Err error }

func (Rejected) isAction() {}

// NewRouter validates cfg and returns a router in Initialize.
func NewRouter(cfg Config) (*Router, error) {
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	r := &Router{}
	r.apply(time.Time{}, cfg)
	return r, nil
}

// normalize checks cfg and returns a copy the router may keep.
func normalize(cfg Config) (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cfg.Source = cfg.Source.Unmap().WithZone("")
	if cfg.VRID == 0 {
		bad("vrid 0 is invalid (1..255)")
	}
	if cfg.Priority == 0 {
		bad("priority 0 is reserved for the Active leaving (1..255)")
	}
	is4 := cfg.Source.Is4()
	switch {
	case !cfg.Source.IsValid() || cfg.Source.IsUnspecified():
		bad("source address not set")
	case cfg.Source.IsMulticast():
		bad("source %v is a multicast address", cfg.Source)
	case !is4 && !cfg.Source.IsLinkLocalUnicast() && !cfg.Unicast:
		bad("source %v: IPv6 adverts must come from a link-local address (RFC 9568 §5.1.2.1)", cfg.Source)
	}
	switch iv := cfg.AdvertInterval; {
	case iv < 10*time.Millisecond || iv > MaxInterval*10*time.Millisecond:
		bad("advert interval %v outside 10ms..40.95s", iv)
	case iv%(10*time.Millisecond) != 0:
		bad("advert interval %v is not a whole number of centiseconds", iv)
	}
	if cfg.PreemptDelay < 0 {
		bad("preempt delay %v is negative", cfg.PreemptDelay)
	}
	normalizeReannounce(&cfg.Reannounce, bad)
	if n := len(cfg.VIPs); n == 0 || n > 255 {
		bad("%d VIPs (1..255 fit an advert)", n)
	}
	vips := make([]netip.Prefix, 0, len(cfg.VIPs))
	for _, p := range cfg.VIPs {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		switch {
		case !p.IsValid():
			bad("VIP %v is not a valid prefix", p)
		case cfg.Source.IsValid() && p.Addr().Is4() != is4:
			bad("VIP %v is not of the family of source %v", p, cfg.Source)
		case slices.ContainsFunc(vips, func(q netip.Prefix) bool { return q.Addr() == p.Addr() }):
			bad("VIP %v listed twice", p.Addr())
		}
		vips = append(vips, p)
	}
	cfg.VIPs = vips
	peers := make([]netip.Addr, 0, len(cfg.Peers))
	for _, a := range cfg.Peers {
		a = a.Unmap().WithZone("")
		switch {
		case !a.IsValid() || a.IsUnspecified():
			bad("peer address not set")
		case cfg.Source.IsValid() && a.Is4() != is4:
			bad("peer %v is not of the family of source %v", a, cfg.Source)
		case a == cfg.Source:
			bad("peer %v is our own source", a)
		case slices.Contains(peers, a):
			bad("peer %v listed twice", a)
		}
		peers = append(peers, a)
	}
	cfg.Peers = peers
	policy := make([]PeerPolicy, 0, len(cfg.Policy))
	for _, p := range cfg.Policy {
		p.Addr = p.Addr.Unmap().WithZone("")
		policy = append(policy, p)
	}
	cfg.Policy = policy
	checkPolicy(cfg, bad)
	checkUnicast(cfg, bad)
	if cfg.Auth != nil {
		a := *cfg.Auth
		a.Keys = slices.Clone(a.Keys)
		if err := auth.Check(a); err != nil {
			bad("%v", err)
		}
		cfg.Auth = &a
	}
	switch {
	case !is4 && (cfg.Checksum == 0 || cfg.Checksum == ChecksumIPv6):
		cfg.Checksum = ChecksumIPv6
	case !is4:
		bad("checksum form %v is not the IPv6 form", cfg.Checksum)
	case cfg.Checksum == 0:
		cfg.Checksum = ChecksumRFC9568
	case cfg.Checksum != ChecksumRFC9568 && cfg.Checksum != ChecksumPseudoHeader:
		bad("checksum form %v is not an IPv4 form", cfg.Checksum)
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("vrrp: vrid %d: %w", cfg.VRID, errors.Join(errs...))
	}
	return cfg, nil
}

// apply installs a normalized planned config: the policy and keys at once,
// a raised priority or lengthened interval only after PolicyGrace.
func (r *Router) apply(now time.Time, cfg Config) {
	oldGroupInterval, oldAuth := r.planned.AdvertInterval, r.planned.Auth
	use := cfg
	if r.cfg.VRID != 0 { // not the first config
		use = r.holdOwnChanges(now, cfg)
	}
	r.planned = cfg
	r.setPolicy(now, cfg, oldGroupInterval)
	r.setAuth(now, oldAuth, cfg.Auth)
	r.install(use)
}

// install puts cfg in force and rebuilds the advert template.
func (r *Router) install(cfg Config) {
	r.cfg = cfg
	r.is4 = cfg.Source.Is4()
	addrs := make([]netip.Addr, len(cfg.VIPs))
	for i, p := range cfg.VIPs {
		addrs[i] = p.Addr()
	}
	// RFC 9568 erratum 8300: an IPv6 advert lists the link-local VIP first.
	slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
		return boolInt(b.Is6() && b.IsLinkLocalUnicast()) - boolInt(a.Is6() && a.IsLinkLocalUnicast())
	})
	r.advert = Advert{
		Version: Version3, Type: TypeAdvertisement, VRID: cfg.VRID,
		MaxAdvertInterval: uint16(cfg.AdvertInterval / (10 * time.Millisecond)),
		Addresses:         addrs,
	}
	if r.state != StateBackup {
		r.activeAdverInterval = cfg.AdvertInterval
	}
}

// Config returns the configuration in force (normalized). While a raised
// priority or lengthened interval waits (Stats.PendingAt), it holds the
// values still in use.
func (r *Router) Config() Config {
	c := r.cfg
	c.VIPs = slices.Clone(c.VIPs)
	c.Peers = slices.Clone(c.Peers)
	c.Policy = slices.Clone(c.Policy)
	if c.Auth != nil {
		a := *c.Auth
		a.Keys = slices.Clone(a.Keys)
		c.Auth = &a
	}
	return c
}

// State returns the current state.
func (r *Router) State() State { return r.state }

// Deadline is when the next Tick is due; zero when no timer runs.
func (r *Router) Deadline() time.Time {
	var d time.Time
	switch r.state {
	case StateActive:
		d = earliest(r.adverTimer, r.reannounceDeadline())
	case StateBackup:
		d = r.downTimer
	default:
		return time.Time{}
	}
	if !r.pendingAt.IsZero() && (d.IsZero() || r.pendingAt.Before(d)) {
		d = r.pendingAt
	}
	if k := r.prevKeysDeadline(); !k.IsZero() && (d.IsZero() || k.Before(d)) {
		d = k
	}
	return d
}

// Stats returns the counters and the current view of the router.
func (r *Router) Stats() Stats {
	s := r.stats
	s.State = r.state
	s.Priority = r.cfg.Priority
	s.AcceptMode = r.cfg.AcceptMode
	s.ActiveAdverInterval = r.activeAdverInterval
	s.ActiveAddr = r.activeAddr
	if r.state == StateActive {
		s.ActiveAddr = r.cfg.Source
	}
	s.Peers = make([]PeerStats, 0, len(r.cfg.Peers))
	for _, a := range r.cfg.Peers {
		s.Peers = append(s.Peers, r.peers[a].stats)
	}
	if r.auth != nil {
		s.Auth.Enabled = true
		s.Auth.Mode = r.auth.Mode()
		s.Auth.ActiveKey = r.auth.ActiveKey()
		s.Auth.KeyIDs = r.auth.KeyIDs()
		s.Auth.Window = r.auth.Window(r.cfg.AdvertInterval)
	}
	if !r.pendingAt.IsZero() {
		s.PendingAt = r.pendingAt
		if r.planned.Priority != r.cfg.Priority {
			s.PendingPriority = r.planned.Priority
		}
		if r.planned.AdvertInterval != r.cfg.AdvertInterval {
			s.PendingInterval = r.planned.AdvertInterval
		}
	}
	return s
}

// AcceptsVIPTraffic says whether the node should accept packets addressed
// to the VIPs (RFC 9568 §6.4.3): only while Active, and only when it owns
// them (priority 255) or Accept_Mode is set. Enforcing it is the driver's job.
func (r *Router) AcceptsVIPTraffic() bool {
	return r.state == StateActive && (r.cfg.AcceptMode || r.cfg.Priority == 255)
}

// SkewTime is Skew_Time for the given Active_Adver_Interval:
// (256 - Priority) * interval / 256, in nanoseconds without rounding to
// centiseconds.
func SkewTime(priority uint8, interval time.Duration) time.Duration {
	return time.Duration(256-int64(priority)) * interval / 256
}

// ActiveDownInterval is 3 * interval + Skew_Time.
func ActiveDownInterval(priority uint8, interval time.Duration) time.Duration {
	return 3*interval + SkewTime(priority, interval)
}

// preempts reports whether a Backup takes over from a lower-priority
// Active; the owner always does (RFC 9568 §6.1 Preempt_Mode).
func (r *Router) preempts() bool { return r.cfg.Preempt || r.cfg.Priority == 255 }

// Step feeds one event at time now and returns what the caller must do,
// in order.
func (r *Router) Step(now time.Time, ev Event) []Action {
	switch ev := ev.(type) {
	case Start:
		return r.start(now)
	case Shutdown:
		return r.shutdown(now)
	case Tick:
		return r.tick(now)
	case Packet:
		return r.receiveNoted(now, ev)
	case *Packet:
		return r.receiveNoted(now, *ev)
	case Reconfigure:
		return r.reconfigure(now, ev.Config)
	case *Reconfigure:
		return r.reconfigure(now, ev.Config)
	}
	return []Action{Rejected{Err: fmt.Errorf("vrrp: unknown event %T", ev)}}
}

func (r *Router) start(now time.Time) []Action {
	if r.state != StateInitialize {
		return nil
	}
	// Nobody relies on the values of a router that was not running.
	if !r.pendingAt.IsZero() {
		r.pendingAt = now
		r.applyPending(now)
	}
	if r.cfg.Priority == 255 {
		return r.becomeActive(now, nil, "startup as address owner (priority 255)")
	}
	r.activeAdverInterval = r.cfg.AdvertInterval
	r.downTimer = now.Add(ActiveDownInterval(r.cfg.Priority, r.activeAdverInterval))
	r.preemptSince = time.Time{}
	r.preemptingPriority = 0
	r.leaving = false
	r.activeAddr = netip.Addr{}
	return []Action{r.transition(StateBackup, "startup")}
}

func (r *Router) shutdown(now time.Time) []Action {
	switch r.state {
	case StateBackup:
		r.downTimer = time.Time{}
		return []Action{r.transition(StateInitialize, "shutdown")}
	case StateActive:
		r.adverTimer = time.Time{}
		r.stopReannounce()
		acts := []Action{r.sendAdvert(now, 0), RemoveVIPs{VIPs: slices.Clone(r.cfg.VIPs)}}
		return append(acts, r.transition(StateInitialize, "shutdown (priority-0 advert sent)"))
	}
	return nil
}

func (r *Router) tick(now time.Time) []Action { return r.appendTick(nil, now) }

// appendTick is tick appending to acts (the sync group passes a buffer it
// reuses: an Active's tick allocates nothing).
func (r *Router) appendTick(acts []Action, now time.Time) []Action {
	r.applyPending(now)
	r.stepPrevKeys(now)
	switch r.state {
	case StateActive:
		paused := r.paused(now) // before the advert below resets it
		if !r.adverTimer.IsZero() && !now.Before(r.adverTimer) {
			r.rearmAdverTimer(now)
			acts = append(acts, r.sendActiveAdvert(now))
		}
		if paused {
			acts = append(acts, r.reannounce(now, AnnouncePause)...)
		}
		return append(acts, r.reannounceTimers(now)...)
	case StateBackup:
		if r.downTimer.IsZero() || now.Before(r.downTimer) {
			return acts
		}
		adi := ActiveDownInterval(r.cfg.Priority, r.activeAdverInterval)
		var reason string
		switch {
		case r.leaving:
			reason = fmt.Sprintf("Active %v left (priority 0), Skew_Time %v passed", r.activeAddr, SkewTime(r.cfg.Priority, r.activeAdverInterval))
		case r.preemptingPriority != 0:
			reason = fmt.Sprintf("preempting lower-priority Active %v (priority %d < %d)", r.preemptingAddr, r.preemptingPriority, r.cfg.Priority)
		case r.activeAddr.IsValid():
			reason = fmt.Sprintf("no advert from Active %v for Active_Down_Interval %v", r.activeAddr, adi)
		default:
			reason = fmt.Sprintf("no Active heard for Active_Down_Interval %v", adi)
		}
		return r.becomeActive(now, acts, reason)
	}
	return acts
}

// rearmAdverTimer keeps the advert cadence without bursting after a late Tick.
func (r *Router) rearmAdverTimer(now time.Time) {
	next := r.adverTimer.Add(r.cfg.AdvertInterval)
	if !next.After(now) {
		next = now.Add(r.cfg.AdvertInterval)
	}
	r.adverTimer = next
}

func (r *Router) becomeActive(now time.Time, acts []Action, reason string) []Action {
	r.preemptingPriority = 0
	r.downTimer = time.Time{}
	r.preemptSince = time.Time{}
	r.leaving = false
	r.activeAdverInterval = r.cfg.AdvertInterval
	r.adverTimer = now.Add(r.cfg.AdvertInterval)
	r.startReannounce(now)
	acts = append(acts,
		r.sendAdvert(now, r.cfg.Priority),
		AddVIPs{VIPs: slices.Clone(r.cfg.VIPs)},
		r.announce(AnnounceTakeover),
	)
	return append(acts, r.transition(StateActive, reason))
}

func (r *Router) becomeBackup(now time.Time, acts []Action, interval time.Duration, reason string) []Action {
	r.preemptingPriority = 0
	r.adverTimer = time.Time{}
	r.stopReannounce()
	r.preemptSince = time.Time{}
	r.leaving = false
	r.activeAdverInterval = interval
	r.downTimer = now.Add(ActiveDownInterval(r.cfg.Priority, interval))
	acts = append(acts, RemoveVIPs{VIPs: slices.Clone(r.cfg.VIPs)})
	return append(acts, r.transition(StateBackup, reason))
}

func (r *Router) transition(to State, reason string) Action {
	r.heldDue = time.Time{}
	t := Transition{From: r.state, To: to, Reason: reason}
	r.state = to
	r.stats.Transitions++
	return t
}

// sendAdvert encodes our advert with the given priority, signed when
// authentication is on.
func (r *Router) sendAdvert(now time.Time, priority uint8) Action {
	r.advert.Priority = priority
	dst := GroupIPv6
	if r.is4 {
		dst = GroupIPv4
	}
	if r.auth == nil || !r.auth.Signs() {
		r.stats.AdvertsSent++
		return r.unsignedAdvert(dst, priority)
	}
	size := HeaderLen + len(r.advert.Addresses)*addrLen(r.is4) + auth.TrailerLen
	data, err := r.advert.AppendMarshal(make([]byte, 0, size), r.cfg.Source, dst, r.cfg.Checksum)
	if err != nil {
		// normalize admits only configs that encode; reaching this is a bug.
		panic("vrrp: encoding a validated advert failed: " + err.Error())
	}
	data = r.sign(now, data, dst)
	r.stats.AdvertsSent++
	return SendAdvert{Data: data, Priority: priority}
}

// unsignedAdvert returns the SendAdvert of the advert encoded now. An
// unsigned advert is the same every interval, so the last one is handed
// out again while its bytes are unchanged: no allocation per advert. Its
// Data is never written again once handed out (a changed advert gets a
// new slice), so a caller may keep it like a fresh one.
func (r *Router) unsignedAdvert(dst netip.Addr, priority uint8) Action {
	var err error
	if r.encoded, err = r.advert.AppendMarshal(r.encoded[:0], r.cfg.Source, dst, r.cfg.Checksum); err != nil {
		// normalize admits only configs that encode; reaching this is a bug.
		panic("vrrp: encoding a validated advert failed: " + err.Error())
	}
	if last, ok := r.lastAdvert.(SendAdvert); !ok || last.Priority != priority || !bytes.Equal(last.Data, r.encoded) {
		r.lastAdvert = SendAdvert{Data: slices.Clip(bytes.Clone(r.encoded)), Priority: priority}
	}
	return r.lastAdvert
}

// answer sends an advert out of cadence (RFC 9568 §6.4.3), at most four
// times per advert interval: a flood of forged adverts must not turn into
// a flood of ours.
func (r *Router) answer(now time.Time) []Action {
	if !r.lastAnswer.IsZero() && now.Sub(r.lastAnswer) < r.cfg.AdvertInterval/4 {
		return nil
	}
	r.lastAnswer = now
	r.rearmAdverTimerFrom(now)
	r.advertSent(now)
	return []Action{r.sendAdvert(now, r.cfg.Priority)}
}

func (r *Router) drop(reason DropReason, src netip.Addr, err error) []Action {
	r.stats.Drops[reason]++
	if ps := r.peers[src]; ps != nil {
		ps.stats.Drops[reason]++
	}
	return []Action{Dropped{Reason: reason, Src: src, Err: err}}
}

// receiveNoted is receive with the policy's Disagreed actions in front.
func (r *Router) receiveNoted(now time.Time, p Packet) []Action {
	r.notes = r.notes[:0]
	acts := r.receive(now, p)
	if len(r.notes) == 0 {
		return acts
	}
	out := make([]Action, 0, len(r.notes)+len(acts))
	return append(append(out, r.notes...), acts...)
}

// receive runs the checks of RFC 9568 §7.1 and then §6.4.2 / §6.4.3.
func (r *Router) receive(now time.Time, p Packet) []Action {
	// Drivers may hand over link-local addresses with their zone; peers
	// and our own source are configured without one.
	src := p.Src.Unmap().WithZone("")
	if r.state == StateInitialize {
		return r.drop(DropNotRunning, src, errors.New("vrrp: advert received before Start"))
	}
	if !src.IsValid() || src.Is4() != r.is4 {
		return r.drop(DropFamily, src, fmt.Errorf("vrrp: source %v is not of the family of this virtual router", src))
	}
	if acts := r.checkDelivery(src, p); acts != nil {
		return acts
	}
	msg, trailer := r.splitTrailer(p.Data)
	form, err := parseInto(&r.rx, p.Data, src, p.Dst, len(trailer))
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return r.drop(pe.Reason, src, err)
		}
		return r.drop(DropLength, src, err)
	}
	adv := &r.rx
	if adv.VRID != r.cfg.VRID {
		return r.drop(DropVRID, src, fmt.Errorf("vrrp: VRID %d, this router is %d", adv.VRID, r.cfg.VRID))
	}
	if src == r.cfg.Source {
		return r.drop(DropOwnSource, src, fmt.Errorf("vrrp: advert from our own source %v (looped back or a duplicate address)", src))
	}
	ps := r.peers[src]
	if ps == nil {
		return r.drop(DropUnknownSource, src, fmt.Errorf("vrrp: %v is not a configured peer of VRID %d", src, r.cfg.VRID))
	}
	if acts := r.authenticate(now, src, ps, msg, trailer); acts != nil {
		return acts
	}
	prio := adv.Priority
	interval := time.Duration(adv.MaxAdvertInterval) * 10 * time.Millisecond
	ps.stats.LastPriority, ps.stats.LastInterval, ps.stats.LastSeen = prio, interval, now
	if r.hasPolicy() {
		if r.checkLeave(now, ps, prio) {
			return r.drop(DropLeaveHeld, src, fmt.Errorf("vrrp: priority 0 from %v ignored until %v: it said so before and kept advertising", src, ps.stats.LeaveHeldUntil.Format(time.RFC3339)))
		}
		var notOwner bool
		if prio, notOwner = r.admitPriority(now, ps, prio); notOwner {
			return r.drop(DropNotOwner, src, fmt.Errorf("vrrp: priority 255 from %v, which the plan gives priority %d (only the owner may send 255)", src, ps.policy.Priority))
		}
		interval = r.admitInterval(now, ps, interval)
	}
	ps.stats.Accepted++
	r.stats.AdvertsReceived++
	r.stats.ChecksumForms[form]++
	if !sameAddresses(adv.Addresses, r.advert.Addresses) {
		r.stats.AddressMismatches++ // RFC 9568 §7.1: MAY check, log only
	}

	switch r.state {
	case StateBackup:
		switch {
		case prio == 0:
			// The Active leaves: take over after Skew_Time only.
			r.downTimer = now.Add(SkewTime(r.cfg.Priority, r.activeAdverInterval))
			r.heldDue = time.Time{}
			r.preemptSince = time.Time{}
			r.activeAddr = src
			r.leaving = true
			r.preemptingPriority = 0
		case !r.preempts() || prio >= r.cfg.Priority || r.waitingPreemptDelay(now):
			r.activeAdverInterval = interval
			r.downTimer = now.Add(ActiveDownInterval(r.cfg.Priority, interval))
			r.heldDue = time.Time{}
			r.heard = now
			r.activeAddr = src
			r.leaving = false
			r.preemptingPriority = 0
			if prio >= r.cfg.Priority {
				r.preemptSince = time.Time{}
			}
		default:
			// Preempt: ignore the lower-priority Active; the down timer
			// runs out and we take over.
			r.preemptingPriority, r.preemptingAddr = prio, src
		}
	case StateActive:
		paused := r.paused(now) // before an answer resets it
		switch {
		case prio != 0 && (prio > r.cfg.Priority || (prio == r.cfg.Priority && src.Compare(r.cfg.Source) > 0)):
			r.activeAddr = src
			var acts []Action
			if !r.cfg.Reannounce.Disabled {
				// The yield advert (keepalived's higher_prio_send_advert):
				// the winner may not know that we acted as Active and
				// announced the VIPs; our advert tells it to announce again.
				acts = append(acts, r.sendAdvert(now, r.cfg.Priority))
			}
			return r.becomeBackup(now, acts, interval, fmt.Sprintf("advert from %v with priority %d beats ours (%d)", src, prio, r.cfg.Priority))
		default:
			// RFC 9568 §6.4.3: answer a lower-priority Active (or one
			// leaving with priority 0) at once so it yields; with a
			// virtual MAC the answer makes bridges relearn it. Clients'
			// neighbour caches may still point at the other router's own
			// MAC: announce the VIPs again too.
			acts := r.answer(now)
			why := AnnounceLowerPriority
			if paused {
				why = AnnouncePause
			}
			return append(acts, r.reannounce(now, why)...)
		}
	}
	return nil
}

// waitingPreemptDelay starts or continues the PreemptDelay wait of a Backup
// that hears a lower-priority Active; true while the delay has not passed.
func (r *Router) waitingPreemptDelay(now time.Time) bool {
	if r.cfg.PreemptDelay <= 0 {
		return false
	}
	if r.preemptSince.IsZero() {
		r.preemptSince = now
	}
	return now.Before(r.preemptSince.Add(r.cfg.PreemptDelay))
}

// sendActiveAdvert sends our advert while Active at now.
func (r *Router) sendActiveAdvert(now time.Time) Action {
	r.advertSent(now)
	return r.sendAdvert(now, r.cfg.Priority)
}

// rearmAdverTimerFrom restarts the advert interval after an advert sent now.
func (r *Router) rearmAdverTimerFrom(now time.Time) {
	r.adverTimer = now.Add(r.cfg.AdvertInterval)
}

func sameAddresses(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// CheckReconfigure says whether cfg may replace the running configuration
// in place (Reconfigure would reject it otherwise).
func (r *Router) CheckReconfigure(cfg Config) error {
	_, err := r.checkReconfigure(cfg)
	return err
}

func (r *Router) checkReconfigure(cfg Config) (Config, error) {
	n, err := normalize(cfg)
	if err != nil {
		return Config{}, err
	}
	if n.VRID != r.cfg.VRID {
		return Config{}, fmt.Errorf("vrrp: reconfigure: VRID %d -> %d needs a new router", r.cfg.VRID, n.VRID)
	}
	if n.Source.Is4() != r.is4 {
		return Config{}, fmt.Errorf("vrrp: reconfigure: VRID %d: address family change needs a new router", r.cfg.VRID)
	}
	return n, nil
}

// reconfigure swaps the configuration in place. Nothing is sent and no
// state changes: VIP differences while Active become AddVIPs + Announce
// (added) and RemoveVIPs (removed); the rest takes effect from the next
// advert or timer.
func (r *Router) reconfigure(now time.Time, cfg Config) []Action {
	n, err := r.checkReconfigure(cfg)
	if err != nil {
		return []Action{Rejected{Err: err}}
	}
	old := r.cfg
	r.apply(now, n)
	n = r.cfg
	if !n.Preempt || n.PreemptDelay == 0 {
		r.preemptSince = time.Time{}
	}
	var acts []Action
	switch r.state {
	case StateActive:
		r.activeAdverInterval = n.AdvertInterval
		if next := now.Add(n.AdvertInterval); next.Before(r.adverTimer) {
			r.adverTimer = next // a shorter interval applies at once
		}
		r.reconfigureReannounce(now, old.Reannounce)
		added, removed := diffPrefixes(old.VIPs, n.VIPs)
		if len(added) > 0 {
			r.stats.Announcements[AnnounceTakeover]++
			acts = append(acts, AddVIPs{VIPs: added}, Announce{VIPs: slices.Clone(added)})
		}
		if len(removed) > 0 {
			acts = append(acts, RemoveVIPs{VIPs: removed})
		}
	}
	return acts
}

// diffPrefixes returns the prefixes of next missing from prev and those of
// prev missing from next (a changed prefix length counts as both).
func diffPrefixes(prev, next []netip.Prefix) (added, removed []netip.Prefix) {
	for _, p := range next {
		if !slices.Contains(prev, p) {
			added = append(added, p)
		}
	}
	for _, p := range prev {
		if !slices.Contains(next, p) {
			removed = append(removed, p)
		}
	}
	return added, removed
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
