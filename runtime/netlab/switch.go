package netlab

import "strconv"

// Isolate cuts node's eth0 off from every other isolated port of the main
// segment (the bridge's "isolated" port flag) while it keeps talking to
// the ports that are not isolated. Isolating two directors splits them
// from each other, while clients and the observer still reach and see
// both: a partition between directors. Isolate(node, false) heals it.
func (l *Lab) Isolate(node string, on bool) {
	l.t.Helper()
	l.mu.Lock()
	port := l.portOf[node+"/"+nodeIfname]
	l.mu.Unlock()
	if port == "" {
		l.t.Fatalf("netlab: no switch port for %s", node)
	}
	flag := "off"
	if on {
		flag = "on"
	}
	l.must("ip", "-n", l.prefix+"-"+switchNode, "link", "set", "dev", port, "type", "bridge_slave", "isolated", flag)
}

// LearnMACs makes the main segment's bridge learn MAC addresses like a
// switch (ageing after the given seconds) instead of flooding every frame
// like a hub. Unicast then reaches only the port a MAC was last seen on,
// so a moved MAC (a virtual MAC after a failover) must be relearned; the
// observer no longer sees other nodes' unicast.
func (l *Lab) LearnMACs(ageingSeconds int) {
	l.t.Helper()
	l.must("ip", "-n", l.prefix+"-"+switchNode, "link", "set", bridgeName, "type", "bridge",
		"ageing_time", strconv.Itoa(ageingSeconds*100))
}
