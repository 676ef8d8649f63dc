package compiler

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
)

// Messages for the mistakes people make most, written from the schema's
// own field names and from the value the user wrote, instead of CUE's
// words ("does not satisfy net.IP", "mismatched types int and string").

// schemaAt returns the part of #Repo that applies at path (it may not
// exist).
func (l *loader) schemaAt(path []cue.Selector) cue.Value {
	s := l.repoDef
	for _, sel := range path {
		any := cue.AnyString
		if sel.Type() == cue.IndexLabel {
			any = cue.AnyIndex
		}
		s = childSchema(s, sel, any)
		if !s.Exists() {
			return s
		}
	}
	return s
}

// fieldNames returns the fields a schema struct declares, sorted.
func fieldNames(s cue.Value) []string {
	it, err := s.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	var out []string
	for it.Next() {
		out = append(out, it.Selector().Unquoted())
	}
	slices.Sort(out)
	return out
}

// entryKind names what a struct of entries by name holds, from its field
// name in the schema.
var entryKind = map[string]string{
	"segments": "segment", "clusters": "cluster", "nodes": "node", "groups": "group",
	"externalPeers": "external peer", "interfaces": "interface",
}

// explainLabel says why the last label of path is not allowed: a
// misspelt field (with the closest field the schema has), or an entry
// whose name breaks the naming rule (a struct that declares no fields
// holds entries by name).
func (l *loader) explainLabel(path []cue.Selector) (rule, msg, hint string) {
	parent := l.schemaAt(path[:len(path)-1])
	label := path[len(path)-1].Unquoted()
	names := fieldNames(parent)
	if parent.Exists() && len(names) == 0 {
		kind := "entry"
		if len(path) >= 2 {
			if k, ok := entryKind[path[len(path)-2].Unquoted()]; ok {
				kind = k
			}
		}
		rule = "name-invalid"
		msg = fmt.Sprintf("%s name %q is not valid", kind, label)
		if kind == "interface" {
			hint = "a Linux interface name has 1 to 15 characters: letters, digits and _ . : @ -, not starting with a punctuation mark"
		} else {
			hint = "a name is a DNS label (it names plan files, metrics and logs): lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
			if s := dnsLabel(label); s != label && parent.Allows(cue.Str(s)) {
				hint = fmt.Sprintf("did you mean %q? ", s) + hint
			}
		}
		return rule, msg, hint
	}
	rule, msg = "unknown-field", "field not allowed"
	list := strings.Join(names, ", ")
	if len(names) == 0 {
		return rule, msg, "check the spelling; `mwgc schema` lists every field"
	}
	here := "at the top level"
	switch {
	case len(path) >= 3 && entryKind[path[len(path)-3].Unquoted()] != "":
		here = "of a " + entryKind[path[len(path)-3].Unquoted()]
	case len(path) >= 2:
		here = "of " + path[len(path)-2].Unquoted()
	}
	if best := closest(label, names); best != "" {
		return rule, msg, fmt.Sprintf("did you mean %q? the fields %s are: %s", best, here, list)
	}
	return rule, msg, fmt.Sprintf("the fields %s are: %s", here, list)
}

// dnsLabel turns a name into the nearest DNS label: lower case, other
// characters as '-'.
func dnsLabel(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

// closest returns the candidate nearest to s (case-insensitive edit
// distance of at most a third of its length, at least 1), or "".
func closest(s string, candidates []string) string {
	best, bestD := "", max(1, len(s)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and swaps of neighbours ("lna" for
// "lan") cost one each.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// explainValue rewrites CUE's error about a wrong address or duration into
// what is wrong with the value the user wrote, and how to write it.
func (l *loader) explainValue(inst *instance, path []cue.Selector, cueMsg string) (msg, hint string, ok bool) {
	v := inst.user.LookupPath(cue.MakePath(path...))
	if !v.Exists() {
		return "", "", false
	}
	for _, family := range []string{"net.IPv4", "net.IPv6", "net.IP"} {
		if strings.Contains(cueMsg, "does not satisfy "+family+")") {
			text, err := v.String()
			if err != nil {
				return "", "", false
			}
			msg, hint = explainAddress(text, strings.TrimPrefix(family, "net."))
			return msg, hint, true
		}
	}
	if l.isDuration(path) {
		msg, hint = explainDuration(v)
		return msg, hint, msg != ""
	}
	if want := l.addressKind(path); want != "" && strings.Contains(cueMsg, "mismatched types") {
		msg, hint = explainAddress(fmt.Sprint(v), want)
		return fmt.Sprintf("%v is not an address", v), hint, true
	}
	return "", "", false
}

// addressKind returns IP, IPv4 or IPv6 when the schema takes an address
// at path, "" otherwise.
func (l *loader) addressKind(path []cue.Selector) string {
	s := l.schemaAt(path)
	if !s.Exists() {
		return ""
	}
	ok := func(text string) bool { return s.Unify(l.ctx.CompileString(text)).Validate() == nil }
	switch v4, v6 := ok(`"192.0.2.1"`), ok(`"2001:db8::1"`); {
	case v4 && v6:
		return "IP"
	case v4:
		return "IPv4"
	case v6:
		return "IPv6"
	}
	return ""
}

// explainAddress says what is wrong with an address; want is IP, IPv4 or
// IPv6.
func explainAddress(text, want string) (msg, hint string) {
	what := "an IP address"
	if want != "IP" {
		what = "an " + want + " address"
	}
	msg = fmt.Sprintf("%q is not %s", text, what)
	example := map[string]string{"IP": `"192.0.2.10" or "2001:db8::10"`, "IPv4": `"192.0.2.10"`, "IPv6": `"fe80::10"`}[want]
	addr, reason := text, ""
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr, reason = addr[:i], "it has a prefix length"
	}
	if fixed, ok := withoutLeadingZeros(addr); ok {
		addr = fixed
		if reason != "" {
			reason += ", and an octet has a leading zero"
		} else {
			reason = "an octet has a leading zero"
		}
	}
	a, err := netip.ParseAddr(addr)
	switch {
	case err != nil || reason == "":
		if err == nil && ((want == "IPv4" && !a.Is4()) || (want == "IPv6" && !a.Is6())) {
			return msg, fmt.Sprintf("this field takes %s, such as %s", what, example)
		}
		return msg, fmt.Sprintf("write %s such as %s", what, example)
	default:
		msg += " (" + reason + ")"
		hint = fmt.Sprintf("write %q", a.String())
		if strings.Contains(reason, "prefix") {
			hint += ": addresses are written without prefix length, the segment's prefix gives it"
		} else {
			hint += ": leading zeros are not allowed (some tools read them as octal)"
		}
		return msg, hint
	}
}

// withoutLeadingZeros drops leading zeros from the octets of a dotted
// IPv4 address; ok when there were any.
func withoutLeadingZeros(s string) (string, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return s, false
	}
	changed := false
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return s, false
		}
		if q := strconv.Itoa(n); q != p {
			parts[i], changed = q, true
		}
	}
	return strings.Join(parts, "."), changed
}

// isDuration reports whether the schema takes a duration at path.
func (l *loader) isDuration(path []cue.Selector) bool {
	s := l.schemaAt(path)
	if !s.Exists() {
		return false
	}
	return s.Unify(l.ctx.CompileString(`"1s"`)).Validate() == nil && s.Unify(l.ctx.CompileString(`"1"`)).Validate() != nil
}

// explainDuration says what is wrong with a duration value.
func explainDuration(v cue.Value) (msg, hint string) {
	const units = "a duration needs its unit: ns, us, ms, s, m or h"
	var text string
	switch v.Kind() {
	case cue.IntKind, cue.FloatKind, cue.NumberKind:
		text = fmt.Sprint(v)
		msg = fmt.Sprintf("%s is a number, not a duration", text)
	case cue.StringKind:
		text, _ = v.String()
		msg = fmt.Sprintf("%q is not a duration", text)
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			return msg, "write a duration such as \"100ms\" or \"1.5s\"; " + units
		}
		msg += " (it has no unit)"
	default:
		return "", ""
	}
	return msg, fmt.Sprintf("did you mean \"%ss\" or \"%sms\"? %s", text, text, units)
}

// unknownSegment reports a reference to a segment nobody defines, with the
// segments that are defined and the nearest of them.
func (c *checker) unknownSegment(cl *cluster, name string, path []cue.Selector) {
	pos := c.l.lookupPos(cl.inst, path)
	if _, ok := c.unknownSegments[name]; !ok {
		c.unknownSegments[name] = pos
	}
	names := sortedKeys(c.repo.segments)
	hint := "define the segment under segments: (in any package of the repository), or fix the name"
	if best := closest(name, names); best != "" {
		s := c.repo.segments[best]
		hint = fmt.Sprintf("did you mean %q (defined at %s)? or ", best, c.pos(s.inst, sel("segments", best))) + hint
	}
	c.l.add(Finding{Severity: SeverityError, Rule: "unknown-segment", Pos: pos, Hint: hint,
		Message: fmt.Sprintf("segment %q is not defined; %s", name, listOf("the repository defines", "segments", names))})
}

// checkUnusedSegments reports, at its definition, a segment no cluster
// uses whose name is near one that is used but not defined: the same
// misspelling, seen from the other end. When a cluster was not checked
// (schema errors) it may be the user, so nothing is said.
func (c *checker) checkUnusedSegments() {
	if len(c.unknownSegments) == 0 || len(c.brokenClusters) > 0 || len(c.partials) > 0 {
		return
	}
	unknown := sortedKeys(c.unknownSegments)
	for _, name := range sortedKeys(c.repo.segments) {
		s := c.repo.segments[name]
		if c.usedSegments[name] || s.broken {
			continue
		}
		for _, u := range unknown {
			if closest(u, []string{name}) == "" {
				continue
			}
			c.add(SeverityError, "unknown-segment", s.inst, sel("segments", name),
				fmt.Sprintf("use one spelling: rename the segment to %q, or fix the references", u),
				"segment %s is used by no cluster, while %q, used at %s, is not defined: one of the two names is misspelt", name, u, c.unknownSegments[u])
			break
		}
	}
}

// listOf writes "what a, b, c" with at most ten names.
func listOf(what, plural string, names []string) string {
	if len(names) == 0 {
		return "there are no " + plural
	}
	const most = 10
	if len(names) > most {
		return fmt.Sprintf("%s %s, ... (%d more)", what, strings.Join(names[:most], ", "), len(names)-most)
	}
	return what + " " + strings.Join(names, ", ")
}
