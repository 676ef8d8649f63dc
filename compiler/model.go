package compiler

// The Go side of the schema: what Decode fills after the CUE value of a
// segment or cluster validated. Field names follow schema/mwgc.cue.

type segmentDoc struct {
	CIDRs     []string   `json:"cidrs"`
	Protected bool       `json:"protected"`
	Waiver    *waiverDoc `json:"waiver,omitempty"`
}

type waiverDoc struct {
	Reason string `json:"reason"`
}

type clusterDoc struct {
	Mode       string             `json:"mode"`
	Nodes      map[string]nodeDoc `json:"nodes"`
	VRRP       *vrrpDoc           `json:"vrrp,omitempty"`
	Management *managementDoc     `json:"management,omitempty"`
	// Distribution: see distribution.go.
	Distribution *distributionDoc `json:"distribution,omitempty"`
}

type nodeDoc struct {
	Interfaces   map[string]interfaceDoc `json:"interfaces"`
	ManagementIP string                  `json:"managementIP,omitempty"`
	Priority     int                     `json:"priority"`
}

type interfaceDoc struct {
	Segment   string   `json:"segment"`
	Addresses []string `json:"addresses"`
	LinkLocal string   `json:"linkLocal,omitempty"`
}

type vrrpDoc struct {
	Groups         map[string]groupDoc `json:"groups"`
	Announce       announceDoc         `json:"announce"`
	Authentication *authDoc            `json:"authentication,omitempty"`
	RolloutGrace   string              `json:"rolloutGrace"`
	Notify         *notifyDoc          `json:"notify,omitempty"`
}

type authDoc struct {
	Mode      string       `json:"mode"`
	Keys      []authKeyDoc `json:"keys"`
	ActiveKey int          `json:"activeKey"`
	Window    string       `json:"window,omitempty"`
}

type authKeyDoc struct {
	ID   int    `json:"id"`
	File string `json:"file"`
}

type groupDoc struct {
	VRID            int                `json:"vrid"`
	Segment         string             `json:"segment"`
	VIPs            []string           `json:"vips"`
	AdvertInterval  string             `json:"advertInterval"`
	Version         int                `json:"version"`
	Preempt         bool               `json:"preempt"`
	PreemptDelay    string             `json:"preemptDelay"`
	AcceptMode      bool               `json:"acceptMode"`
	Checksum        string             `json:"checksum"`
	VirtualMAC      bool               `json:"virtualMAC"`
	ExternalPeers   map[string]peerDoc `json:"externalPeers,omitempty"`
	Authentication  *authDoc           `json:"authentication,omitempty"`
	Unauthenticated *waiverDoc         `json:"unauthenticated,omitempty"`
	Transport       string             `json:"transport"`
	Unicast         *unicastDoc        `json:"unicast,omitempty"`
}

// unicastDoc is #Unicast (unicast.go).
type unicastDoc struct {
	MinTTL  int               `json:"minTTL"`
	Sources map[string]string `json:"sources,omitempty"`
	Waiver  *waiverDoc        `json:"waiver,omitempty"`
}

type peerDoc struct {
	Address        string `json:"address"`
	Priority       int    `json:"priority"`
	Authentication bool   `json:"authentication"`
}

type announceDoc struct {
	Count       int           `json:"count"`
	Interval    string        `json:"interval"`
	RepeatAfter string        `json:"repeatAfter"`
	Reannounce  reannounceDoc `json:"reannounce"`
}

type reannounceDoc struct {
	Count   int    `json:"count"`
	Holdoff string `json:"holdoff"`
	Refresh string `json:"refresh"`
}

type managementDoc struct {
	Segment           string `json:"segment"`
	Port              int    `json:"port"`
	DiscoveryInterval string `json:"discoveryInterval"`
	DeadAfter         int    `json:"deadAfter"`
	KeyFile           string `json:"keyFile,omitempty"`
	Unauthenticated   bool   `json:"unauthenticated"`
	Discovery         string `json:"discovery"`
	TableFile         string `json:"tableFile,omitempty"`
}

type distributionDoc struct {
	Mode          string   `json:"mode"`
	VIPs          []string `json:"vips"`
	Ports         []int    `json:"ports"`
	ProxyPort     int      `json:"proxyPort"`
	Segment       string   `json:"segment,omitempty"`
	DirectorsScan bool     `json:"directorsScan"`
	LoadWeighting bool     `json:"loadWeighting"`
	Slots         int      `json:"slots"`
}

type notifyDoc struct {
	Active  []string `json:"active,omitempty"`
	Backup  []string `json:"backup,omitempty"`
	Fault   []string `json:"fault,omitempty"`
	Timeout string   `json:"timeout"`
}
