package compiler

// Rule describes one check. IDs are stable: CI configurations and
// suppressions may name them.
type Rule struct {
	ID       string
	Severity Severity
	Summary  string
}

// Rules lists every rule in the order of compiler/README.md.
var Rules = []Rule{
	// Reading the repository and the schema.
	{"load", SeverityError, "a directory could not be loaded as one CUE package"},
	{"syntax", SeverityError, "CUE syntax error"},
	{"conflict", SeverityError, "the package contradicts itself, before the schema applies"},
	{"schema", SeverityError, "a value has the wrong type or is out of the schema's range"},
	{"unknown-field", SeverityError, "a field the schema does not know (often a typo); the hint names the nearest field"},
	{"name-invalid", SeverityError, "a segment, cluster, node, group or peer name that is not a DNS label, or an interface name Linux refuses"},
	{"missing-field", SeverityError, "a required field is missing"},
	{"not-concrete", SeverityError, "a field is left as a type or constraint, not a value"},
	{"schema-copy", SeverityWarning, "a copy of the mwgc schema (or a file applying #Repo) inside a package; left out"},
	// Repository-wide.
	{"segment-conflict", SeverityError, "a segment defined differently in two packages (every field is compared)"},
	{"cluster-duplicate", SeverityError, "a cluster name used twice in the repository"},
	{"address-duplicate", SeverityError, "an address (node address, VIP, link-local per segment) used twice in the repository"},
	{"vrid-duplicate", SeverityError, "a VRID used twice in one broadcast domain (overlapping segments count as one) for one address family, across all clusters"},
	{"segment-overlap", SeverityError, "two differently named segments with overlapping prefixes: one broadcast domain under two names"},
	// Segments.
	{"segment-cidrs", SeverityError, "more than one prefix of one family on a segment"},
	{"unknown-segment", SeverityError, "a reference to a segment that is not defined"},
	{"unprotected-segment", SeverityError, "VIPs or management IPs on an unprotected segment without a waiver"},
	{"waiver-reason", SeverityError, "a waiver without a written reason"},
	{"segment-waived", SeverityNote, "VIPs or management IPs on an unprotected segment, waived with a reason"},
	// Nodes.
	{"no-nodes", SeverityError, "a cluster without nodes"},
	{"segment-multiple-interfaces", SeverityError, "a node with two interfaces on one segment"},
	{"address-outside-segment", SeverityError, "a node address that is not a host address of its interface's segment"},
	{"link-local-invalid", SeverityError, "a linkLocal outside fe80::/10"},
	// Mode.
	{"mode-missing-protocol", SeverityError, "a mode that uses VRRP and management, without those sections"},
	{"mode-unused-protocol", SeverityError, "VRRP or management configured for explicit-proxy, which uses neither"},
	// VRRP.
	{"interval-range", SeverityError, "a duration out of range (advert, preempt delay, announce, discovery)"},
	{"priority-tie", SeverityError, "two directors (or a director and an external peer) with one priority"},
	{"no-groups", SeverityError, "a vrrp section without groups"},
	{"no-director", SeverityError, "VRRP without any node of priority above 0"},
	{"single-director", SeverityWarning, "only one director: nothing takes over when it fails"},
	{"owner-priority", SeverityError, "priority 255 on a node that does not own every VIP"},
	{"vip-family-mixed", SeverityError, "IPv4 and IPv6 VIPs in one group"},
	{"vip-outside-segment", SeverityError, "a VIP that is not a host address of the group's segment"},
	{"vip-is-node-address", SeverityError, "a VIP equal to an address of a node that is not the owner"},
	{"director-not-on-segment", SeverityError, "a director without an interface on a group's segment"},
	{"vrrp-source-missing", SeverityError, "a director without an IPv4 address (IPv4 group) or linkLocal (IPv6 group) there"},
	{"peer-address", SeverityError, "an external peer address of the wrong family, not link-local for IPv6 (multicast groups), or a director's"},
	{"accept-mode-ha-proxy", SeverityError, "a group without accept mode in ha-proxy mode, where clients connect to the VIP and the Active would drop them"},
	{"checksum-interop", SeverityWarning, "an IPv4 group with external peers that sends the message-only checksum, which keepalived and FRR reject"},
	// VRRP authentication (docs/security.md).
	{"vrrp-unauthenticated", SeverityError, "a group on an unprotected segment without authentication and without a reason to go without"},
	{"vrrp-unauthenticated-waived", SeverityNote, "a group runs without authentication on purpose, with the reason"},
	{"vrrp-auth-conflict", SeverityError, "a group with both authentication and unauthenticated"},
	{"vrrp-auth-keys", SeverityError, "authentication without a key, a key id listed twice, or an activeKey that is not listed"},
	{"vrrp-auth-key-path", SeverityError, "a key file path that is not a clean absolute path"},
	{"vrrp-auth-transitional", SeverityWarning, "authentication in permissive or receive-only mode (a roll-out not finished)"},
	{"vrrp-auth-peer", SeverityError, "a group that enforces authentication with an external peer that cannot authenticate"},
	// Unicast VRRP (docs/agent.md, docs/security.md).
	{"vrrp-unicast-unauthenticated", SeverityError, "a unicast group without enforced authentication and without a written reason"},
	{"vrrp-unicast-waived", SeverityNote, "a unicast group runs without enforced authentication on purpose, with the reason"},
	{"vrrp-unicast-peer-address", SeverityError, "an external peer of a unicast group without a unicast address of the group's family"},
	{"vrrp-unicast-source", SeverityError, "a unicast source for a node that is not a director, or not an address of its interface on the segment"},
	{"vrrp-unicast-unused", SeverityError, "unicast settings on a group whose transport is multicast"},
	// Management.
	{"management-key", SeverityError, "neither keyFile nor unauthenticated, or both"},
	{"management-unauthenticated", SeverityWarning, "the management protocol runs without authentication"},
	{"management-not-ipv4", SeverityError, "a management segment without an IPv4 prefix"},
	{"management-no-broadcast", SeverityError, "a management segment of /31 or /32, which has no broadcast address, with broadcast discovery"},
	{"scanner-not-on-segment", SeverityError, "a node without an interface on the management segment"},
	{"management-ip-missing", SeverityError, "a node without managementIP"},
	{"management-ip-not-on-interface", SeverityError, "a managementIP that is not an address of the node's interface there"},
	// Distribution.
	{"distribution-vip", SeverityError, "a distributed VIP that is not an IPv4 VIP of the cluster, or VIPs on two segments"},
	{"distribution-ports", SeverityError, "a distributed port listed twice"},
	{"distribution-segment", SeverityError, "a director or a node taking a share without an IPv4 address on the distribution segment"},
	{"distribution-no-nodes", SeverityError, "no node takes a share of the distributed traffic"},
	{"distribution-load-weighting", SeverityWarning, "clients follow the nodes' load, so they move when it changes and at a failover"},
}
