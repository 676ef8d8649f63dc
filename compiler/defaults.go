package compiler

import (
	"encoding/json"
	"fmt"

	"cuelang.org/go/cue"
)

// Valid instances are exported from the user's own value, which is about
// twice as fast as exporting the value unified with the schema; the
// schema's defaults are then filled in from these documents, which are
// read from the schema itself (so it stays the one source of truth).
// Decoding a document starts from a copy of its defaults, and JSON only
// overwrites the fields the user wrote.
var defaults struct {
	node       nodeDoc
	iface      interfaceDoc
	vrrp       vrrpDoc
	group      groupDoc
	management managementDoc
	auth       authDoc
	distrib    distributionDoc
	notify     notifyDoc
	unicast    unicastDoc
}

// loadDefaults reads the default of every field of the schema's
// definitions that has one.
func loadDefaults(s cue.Value) error {
	for _, d := range []struct {
		def string
		out any
	}{
		{"#Node", &defaults.node},
		{"#Interface", &defaults.iface},
		{"#VRRP", &defaults.vrrp},
		{"#Group", &defaults.group},
		{"#Management", &defaults.management},
		{"#VRRPAuth", &defaults.auth},
		{"#Distribution", &defaults.distrib},
		{"#Notify", &defaults.notify},
		{"#Unicast", &defaults.unicast},
	} {
		b, err := defaultsJSON(s.LookupPath(cue.MakePath(cue.Def(d.def))))
		if err != nil {
			return fmt.Errorf("defaults of %s: %w", d.def, err)
		}
		if err := json.Unmarshal(b, d.out); err != nil {
			return fmt.Errorf("defaults of %s: %w", d.def, err)
		}
	}
	return nil
}

// defaultsJSON returns a JSON object with the concrete default of every
// field of def that has one.
func defaultsJSON(def cue.Value) ([]byte, error) {
	it, err := def.Fields(cue.Optional(true))
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for it.Next() {
		v := it.Value()
		if d, ok := v.Default(); ok {
			v = d
		}
		if b, err := v.MarshalJSON(); err == nil {
			out[it.Selector().Unquoted()] = b
		}
	}
	return json.Marshal(out)
}

// The UnmarshalJSON methods start from the defaults. The plain types
// have no methods, so they decode field by field.

func (d *nodeDoc) UnmarshalJSON(b []byte) error {
	type plain nodeDoc
	*d = defaults.node
	d.Interfaces = nil // maps and slices must not be shared
	return json.Unmarshal(b, (*plain)(d))
}

func (d *interfaceDoc) UnmarshalJSON(b []byte) error {
	type plain interfaceDoc
	*d = defaults.iface
	d.Addresses = nil
	return json.Unmarshal(b, (*plain)(d))
}

func (d *vrrpDoc) UnmarshalJSON(b []byte) error {
	type plain vrrpDoc
	*d = defaults.vrrp
	d.Groups, d.Notify = nil, nil
	return json.Unmarshal(b, (*plain)(d))
}

func (d *groupDoc) UnmarshalJSON(b []byte) error {
	type plain groupDoc
	*d = defaults.group
	d.VIPs, d.ExternalPeers = nil, nil
	d.Unicast = nil // #Unicast's defaults are a pointer: never share it
	return json.Unmarshal(b, (*plain)(d))
}

func (d *managementDoc) UnmarshalJSON(b []byte) error {
	type plain managementDoc
	*d = defaults.management
	return json.Unmarshal(b, (*plain)(d))
}

func (d *authDoc) UnmarshalJSON(b []byte) error {
	type plain authDoc
	*d = defaults.auth
	d.Keys = nil
	return json.Unmarshal(b, (*plain)(d))
}

func (d *distributionDoc) UnmarshalJSON(b []byte) error {
	type plain distributionDoc
	*d = defaults.distrib
	d.VIPs, d.Ports = nil, nil
	if err := json.Unmarshal(b, (*plain)(d)); err != nil {
		return err
	}
	if d.Ports == nil {
		d.Ports = append([]int(nil), defaults.distrib.Ports...)
	}
	return nil
}

func (d *notifyDoc) UnmarshalJSON(b []byte) error {
	type plain notifyDoc
	*d = defaults.notify
	return json.Unmarshal(b, (*plain)(d))
}

func (d *unicastDoc) UnmarshalJSON(b []byte) error {
	type plain unicastDoc
	*d = defaults.unicast
	d.Sources = nil
	return json.Unmarshal(b, (*plain)(d))
}
