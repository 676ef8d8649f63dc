package compiler

import (
	"encoding/json"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// plainData reads a package whose files hold only data — struct and list
// literals, strings, integers, booleans and null, with plain labels — into
// the model without evaluating it again. Such files mean exactly the deep
// merge of their literals, and CUE has already checked that the merge
// agrees with itself and the schema. It returns nil at the first construct
// it does not handle (references, comprehensions, interpolations,
// definitions, imports, ...), and the caller exports the CUE value instead.
func plainData(files []*ast.File) *parsed {
	root := map[string]any{}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.Package, *ast.CommentGroup, *ast.Attribute:
			case *ast.Field:
				if !mergeField(root, d) {
					return nil
				}
			default:
				return nil
			}
		}
	}
	b, err := json.Marshal(root)
	if err != nil {
		return nil
	}
	var p parsed
	if err := json.Unmarshal(b, &p); err != nil {
		return nil
	}
	return &p
}

func mergeField(into map[string]any, f *ast.Field) bool {
	if f.Constraint != token.ILLEGAL {
		return false // optional or required marker: not data
	}
	var name string
	switch l := f.Label.(type) {
	case *ast.Ident:
		if strings.HasPrefix(l.Name, "#") || strings.HasPrefix(l.Name, "_") {
			return false
		}
		name = l.Name
	case *ast.BasicLit:
		if l.Kind != token.STRING {
			return false
		}
		s, err := literal.Unquote(l.Value)
		if err != nil {
			return false
		}
		name = s
	default:
		return false
	}
	v, ok := plainValue(f.Value)
	if !ok {
		return false
	}
	merged, ok := merge(into[name], v)
	if !ok {
		return false
	}
	into[name] = merged
	return true
}

func plainValue(e ast.Expr) (any, bool) {
	switch e := e.(type) {
	case *ast.StructLit:
		m := map[string]any{}
		for _, d := range e.Elts {
			switch d := d.(type) {
			case *ast.CommentGroup, *ast.Attribute:
			case *ast.Field:
				if !mergeField(m, d) {
					return nil, false
				}
			default:
				return nil, false
			}
		}
		return m, true
	case *ast.ListLit:
		l := make([]any, 0, len(e.Elts))
		for _, x := range e.Elts {
			v, ok := plainValue(x)
			if !ok {
				return nil, false
			}
			l = append(l, v)
		}
		return l, true
	case *ast.BasicLit:
		switch e.Kind {
		case token.STRING:
			if strings.HasPrefix(e.Value, "'") {
				return nil, false // bytes
			}
			s, err := literal.Unquote(e.Value)
			return s, err == nil
		case token.INT:
			n, err := strconv.ParseInt(e.Value, 0, 64)
			return n, err == nil
		case token.TRUE:
			return true, true
		case token.FALSE:
			return false, true
		case token.NULL:
			return nil, true
		}
	}
	return nil, false
}

// merge unifies two plain values that CUE has already found consistent:
// structs merge field by field, lists element by element.
func merge(a, b any) (any, bool) {
	if a == nil {
		return b, true
	}
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return nil, false
		}
		for k, v := range bm {
			m, ok := merge(a[k], v)
			if !ok {
				return nil, false
			}
			a[k] = m
		}
		return a, true
	case []any:
		bl, ok := b.([]any)
		if !ok || len(bl) != len(a) {
			return nil, false
		}
		for i := range a {
			m, ok := merge(a[i], bl[i])
			if !ok {
				return nil, false
			}
			a[i] = m
		}
		return a, true
	}
	return a, a == b
}
