package compiler

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"

	"github.com/mwgc/mwgc/schema"
)

// instance is one loaded CUE package of the repository.
type instance struct {
	dir   string
	user  cue.Value // as the user wrote it: positions come from here
	value cue.Value // unified with #Repo
	// broken holds the top-level entries ("clusters", name) that carry a
	// schema error; semantic checks skip them.
	broken map[[2]string]bool
	// hasErrors is set when any CUE error was reported for the instance.
	hasErrors bool
	// files are the parsed files, for plainData.
	files []*ast.File
	// partial is set when some files of the package do not parse: the
	// package is then checked without them (partial.go).
	partial *partialPackage
	// labels holds the paths of labels reported as not allowed, and
	// invalidNames those of entries with a name the schema refuses: errors
	// below them are not reported again.
	labels, invalidNames map[string]bool
}

// inputSet lists what to load: directories (each loaded as one package)
// and, per directory, explicitly named files.
type inputSet struct {
	dirs  []string
	files map[string][]string
}

// collectInputs expands the command-line paths. A directory stands for
// every directory below it that holds .cue files, skipping hidden
// directories, cue.mod and names starting with "_" (as the go tool does).
func collectInputs(paths []string) (*inputSet, error) {
	in := &inputSet{files: map[string][]string{}}
	seen := map[string]bool{}
	whole := map[string]bool{}
	addDir := func(d string) {
		if !seen[d] {
			seen[d] = true
			in.dirs = append(in.dirs, d)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			if filepath.Ext(p) != ".cue" {
				return nil, fmt.Errorf("%s: not a .cue file or a directory", p)
			}
			d := filepath.Dir(p)
			if whole[d] {
				continue // the whole directory is loaded already
			}
			addDir(d)
			if !slices.Contains(in.files[d], filepath.Base(p)) {
				in.files[d] = append(in.files[d], filepath.Base(p))
			}
			continue
		}
		before := len(in.dirs)
		err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				name := e.Name()
				if path != p && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "cue.mod" || name == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if filepath.Ext(path) == ".cue" {
				d := filepath.Dir(path)
				addDir(d)
				// A directory named whole wins over files named in it.
				whole[d] = true
				delete(in.files, d)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(in.dirs) == before && !seen[filepath.Clean(p)] {
			// An empty directory would otherwise pass as a valid
			// repository: most likely a wrong path in CI.
			return nil, fmt.Errorf("%s: no .cue files found", p)
		}
	}
	return in, nil
}

var (
	defaultsOnce sync.Once
	defaultsErr  error
)

// loader turns paths into unified instances and schema findings.
type loader struct {
	ctx      *cue.Context
	repoDef  cue.Value
	cwd      string
	findings []Finding
	// parsed and spans serve the ends of findings (span.go).
	parsed map[string]*ast.File
	spans  map[string]spans
}

func newLoader() (*loader, error) {
	ctx := cuecontext.New()
	s := ctx.CompileString(schema.Source, cue.Filename(schema.Filename))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("embedded schema: %w", err)
	}
	def := s.LookupPath(cue.MakePath(cue.Def("#Repo")))
	if err := def.Err(); err != nil {
		return nil, fmt.Errorf("embedded schema: %w", err)
	}
	defaultsOnce.Do(func() { defaultsErr = loadDefaults(s) })
	if defaultsErr != nil {
		return nil, fmt.Errorf("embedded schema: %w", defaultsErr)
	}
	cwd, _ := os.Getwd()
	return (&loader{ctx: ctx, repoDef: def, cwd: cwd}).fresh(), nil
}

// fresh returns a loader that shares l's context and compiled schema and
// has nothing else of l's run.
func (l *loader) fresh() *loader {
	return &loader{ctx: l.ctx, repoDef: l.repoDef, cwd: l.cwd, parsed: map[string]*ast.File{}, spans: map[string]spans{}}
}

// load loads one directory (or the named files in it).
func (l *loader) load(dir string, files []string) *instance {
	if len(files) == 0 {
		// Name every file: loading "." would silently leave out files
		// without a package clause.
		entries, err := os.ReadDir(dir)
		if err != nil {
			l.add(Finding{Severity: SeverityError, Rule: "load", Message: err.Error(), Hint: "check the path and its permissions", Pos: Position{File: l.rel(dir)}})
			return nil
		}
		for _, e := range entries {
			if !e.IsDir() && filepath.Ext(e.Name()) == ".cue" && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, e.Name())
			}
		}
	}
	insts := load.Instances(files, &load.Config{Dir: dir})
	if len(insts) != 1 {
		l.add(Finding{Severity: SeverityError, Rule: "load", Message: fmt.Sprintf("%s: expected one CUE package, found %d", dir, len(insts)), Hint: "keep one package per directory", Pos: Position{File: l.rel(dir)}})
		return nil
	}
	bi := insts[0]
	var part *partialPackage
	if bi.Err != nil {
		var ok bool
		if part, ok = l.loadErrors(dir, files, bi); !ok {
			return nil
		}
	}
	l.dropSchemaCopies(bi)
	if part != nil {
		bi = part.build(l, dir, bi)
		l.reportUnparsed(part)
	}
	var user cue.Value
	var parsed []*ast.File
	if bi != nil {
		user, parsed = l.ctx.BuildInstance(bi), bi.Files
		l.noteFiles(parsed)
	} else {
		user = l.ctx.CompileString("{}") // no file of the package is left
	}
	inst := &instance{dir: dir, user: user, broken: map[[2]string]bool{}, files: parsed, partial: part, labels: map[string]bool{}, invalidNames: map[string]bool{}}
	seen := map[string]bool{}
	if err := user.Err(); err != nil {
		// The package contradicts itself before the schema comes in.
		// Report that, then carry on: other parts may still be checked.
		errs := errors.Errors(err)
		for _, e := range errs {
			seen[errKey(e)] = true
		}
		l.reportSchemaErrors(inst, errs, "conflict")
	}
	inst.value = user.Unify(l.repoDef)
	if err := inst.value.Validate(cue.Concrete(true)); err != nil {
		// A conflict hides incomplete and missing fields below it, so walk
		// the tree and validate every value on its own.
		l.walk(inst, inst.value, l.repoDef, seen)
	}
	return inst
}

func errKey(e errors.Error) string {
	return strings.Join(e.Path(), "\x00") + "\x01" + errMsg(e)
}

// walk validates v and, when it fails, each child, reporting every error
// once. schema is the part of #Repo that applies to v (it may not exist):
// CUE drops "field not allowed" for a struct that has another error, so
// walk checks closedness itself against the schema.
func (l *loader) walk(inst *instance, v, schema cue.Value, seen map[string]bool) {
	err := v.Validate(cue.Concrete(true))
	if err == nil {
		return
	}
	var fresh []errors.Error
	for _, e := range errors.Errors(err) {
		if key := errKey(e); !seen[key] {
			seen[key] = true
			fresh = append(fresh, e)
		}
	}
	l.reportSchemaErrors(inst, fresh, "")
	// A value in error reports bottom as its kind, yet its fields can still
	// be iterated: try struct, then list.
	if it, err := v.Fields(); err == nil {
		closed := schema.Exists() && schema.IncompleteKind()&cue.StructKind != 0
		for it.Next() {
			sel := it.Selector()
			if closed && !schema.Allows(sel) {
				l.unknownField(inst, v.Path().Selectors(), sel, seen)
				continue
			}
			l.walk(inst, it.Value(), childSchema(schema, sel, cue.AnyString), seen)
		}
		return
	}
	if it, err := v.List(); err == nil {
		for it.Next() {
			l.walk(inst, it.Value(), childSchema(schema, it.Selector(), cue.AnyIndex), seen)
		}
	}
}

// childSchema returns the schema of a field: the field itself, or the
// pattern that applies to any field (or element).
func childSchema(schema cue.Value, sel, any cue.Selector) cue.Value {
	if !schema.Exists() {
		return schema
	}
	cands := []cue.Selector{sel}
	if sel.LabelType() == cue.StringLabel {
		// Optional and required fields are found only by their own kind
		// of selector.
		cands = append(cands, cue.Str(sel.Unquoted()).Optional(), cue.Str(sel.Unquoted()).Required())
	}
	for _, c := range cands {
		if v := schema.LookupPath(cue.MakePath(c)); v.Exists() {
			return v
		}
	}
	return schema.LookupPath(cue.MakePath(any))
}

func (l *loader) unknownField(inst *instance, parent []cue.Selector, sel cue.Selector, seen map[string]bool) {
	l.reportLabel(inst, append(slices.Clip(parent), sel))
}

// reportLabel reports a label the schema does not allow, once: a misspelt
// field, or an entry whose name breaks the naming rule (hints.go).
func (l *loader) reportLabel(inst *instance, sels []cue.Selector) {
	labels := make([]string, 0, len(sels))
	for _, s := range sels {
		labels = append(labels, s.String())
	}
	key := strings.Join(labels, "\x00")
	if inst.labels[key] {
		return
	}
	inst.labels[key] = true
	inst.hasErrors = true
	if len(labels) >= 2 && (labels[0] == "clusters" || labels[0] == "segments") {
		inst.broken[[2]string{labels[0], unquoteLabel(labels[1])}] = true
	}
	rule, msg, hint := l.explainLabel(sels)
	if rule == "unknown-field" {
		msg = strings.Join(labels, ".") + ": " + msg
	} else {
		if len(labels) > 1 {
			msg = strings.Join(labels[:len(labels)-1], ".") + ": " + msg
		}
		inst.invalidNames[key] = true
	}
	l.add(Finding{Severity: SeverityError, Rule: rule, Message: msg, Hint: hint, Pos: l.lookupPos(inst, sels)})
}

// underInvalidName reports (once) and returns true when a label on path
// is an entry name the schema refuses: everything below it is refused
// for that reason alone.
func (l *loader) underInvalidName(inst *instance, sels []cue.Selector) bool {
	for n := 1; n < len(sels); n++ {
		key := make([]string, 0, n+1)
		for _, s := range sels[:n+1] {
			key = append(key, s.String())
		}
		if inst.invalidNames[strings.Join(key, "\x00")] {
			return true
		}
		if sels[n].Type() != cue.StringLabel {
			continue
		}
		parent := l.schemaAt(sels[:n])
		if parent.Exists() && parent.IncompleteKind() == cue.StructKind && len(fieldNames(parent)) == 0 && !parent.Allows(sels[n]) {
			l.reportLabel(inst, sels[:n+1])
			return true
		}
	}
	return false
}

func errMsg(e errors.Error) string {
	format, args := e.Msg()
	return fmt.Sprintf(format, args...)
}

// reportSchemaErrors turns CUE's errors into findings. A failed
// disjunction (such as a field with a default) yields a summary plus one
// error per branch; the summary and the default's branch only repeat that
// the value is wrong, so per path the last branch's error is kept.
func (l *loader) reportSchemaErrors(inst *instance, errs []errors.Error, rule string) {
	byPath := map[string]errors.Error{}
	var order []string
	for _, e := range errs {
		key := strings.Join(e.Path(), ".")
		prev, ok := byPath[key]
		if !ok {
			order = append(order, key)
		} else if strings.Contains(errMsg(e), "errors in empty disjunction") && !strings.Contains(errMsg(prev), "errors in empty disjunction") {
			continue
		}
		byPath[key] = e
	}
	for _, k := range order {
		l.reportSchemaError(inst, byPath[k], rule)
	}
}

// reportSchemaError reports one CUE error; a non-empty conflictRule names
// errors found before the schema was applied.
func (l *loader) reportSchemaError(inst *instance, e errors.Error, conflictRule string) {
	inst.hasErrors = true
	msg := errMsg(e)
	if strings.Contains(msg, "errors in empty disjunction") {
		msg = "value matches none of the allowed forms"
	}
	path := e.Path()
	sels := selectorsOf(path)
	if l.underInvalidName(inst, sels) {
		return
	}
	rule, hint := "schema", "see `mwgc schema` for the allowed type and range of this field"
	switch {
	case strings.Contains(msg, "field not allowed"):
		l.reportLabel(inst, sels)
		return
	case strings.Contains(msg, "required but not present"):
		rule, hint = "missing-field", "add the field; `mwgc schema` documents it"
	case strings.Contains(msg, "incomplete value") || strings.Contains(msg, "non-concrete value"):
		rule, hint = "not-concrete", "give the field a concrete value"
	}
	if inst.partial != nil && (rule == "missing-field" || rule == "not-concrete") {
		// The file that does not parse may supply it (partial.go).
		inst.hasErrors = true
		return
	}
	switch {
	case conflictRule != "" && rule == "schema":
		rule, hint = conflictRule, "the package contradicts itself here, before the schema is applied; make the values agree"
	case rule == "schema":
		if m, h, ok := l.explainValue(inst, sels, msg); ok {
			msg, hint = m, h
		}
	}
	if len(path) >= 2 && (path[0] == "clusters" || path[0] == "segments") {
		inst.broken[[2]string{path[0], unquoteLabel(path[1])}] = true
	}
	if len(path) > 0 {
		msg = strings.Join(path, ".") + ": " + msg
	}
	pos := Position{}
	for _, p := range errors.Positions(e) {
		if p.Filename() != schema.Filename && p.IsValid() {
			pos = l.position(p)
			break
		}
	}
	if pos.Line == 0 {
		pos = l.lookupPos(inst, sels)
	}
	l.add(Finding{Severity: SeverityError, Rule: rule, Message: msg, Hint: hint, Pos: pos})
}

// cueErrors reports load and build errors, which have no instance.
func (l *loader) cueErrors(err error, inst *instance, rule, hint string) {
	for _, e := range errors.Errors(err) {
		if inst != nil {
			inst.hasErrors = true
		}
		if path := e.Path(); inst != nil && len(path) >= 2 && (path[0] == "clusters" || path[0] == "segments") {
			inst.broken[[2]string{path[0], unquoteLabel(path[1])}] = true
		}
		pos := Position{}
		for _, p := range errors.Positions(e) {
			if p.Filename() != schema.Filename && p.IsValid() {
				pos = l.position(p)
				break
			}
		}
		msg := errMsg(e)
		if path := e.Path(); len(path) > 0 {
			msg = strings.Join(path, ".") + ": " + msg
		}
		l.add(Finding{Severity: SeverityError, Rule: rule, Message: msg, Hint: hint, Pos: pos})
	}
}

func (l *loader) add(f Finding) {
	if f.End.Line == 0 {
		f.End = l.endOf(f.Pos)
	}
	l.findings = append(l.findings, f)
}

func (l *loader) position(p token.Pos) Position {
	return Position{File: l.rel(p.Filename()), Line: p.Line(), Column: p.Column(), Offset: p.Offset()}
}

// rel shortens absolute file names below the working directory, so that
// positions match what CI annotations and editors expect.
func (l *loader) rel(name string) string {
	if l.cwd == "" || !filepath.IsAbs(name) {
		return name
	}
	if r, err := filepath.Rel(l.cwd, name); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return name
}

// relMsg shortens the working directory out of a message.
func (l *loader) relMsg(msg string) string {
	if l.cwd == "" {
		return msg
	}
	return strings.ReplaceAll(msg, l.cwd+string(filepath.Separator), "")
}

// lookupPos returns the position of the value at path in the user's own
// value, or of the nearest enclosing value the user wrote.
func (l *loader) lookupPos(inst *instance, sels []cue.Selector) Position {
	for n := len(sels); n >= 0; n-- {
		v := inst.user.LookupPath(cue.MakePath(sels[:n]...))
		if !v.Exists() {
			continue
		}
		if p := v.Pos(); p.IsValid() && p.Filename() != schema.Filename {
			return l.position(p)
		}
	}
	return Position{File: l.rel(inst.dir)}
}

// selectorsOf converts the labels of an error path to selectors.
func selectorsOf(path []string) []cue.Selector {
	sels := make([]cue.Selector, 0, len(path))
	for _, s := range path {
		switch {
		case strings.HasPrefix(s, "#"):
			sels = append(sels, cue.Def(s))
		case isIndex(s):
			i, _ := strconv.Atoi(s)
			sels = append(sels, cue.Index(i))
		default:
			sels = append(sels, cue.Str(unquoteLabel(s)))
		}
	}
	return sels
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func unquoteLabel(s string) string {
	if strings.HasPrefix(s, `"`) {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

// sortedKeys returns the keys of m in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
