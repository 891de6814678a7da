package dsl

import (
	"math"
	"sort"
	"strings"
)

// This file holds the static types lint gives values and expressions:
// built from the JSON Schemas a workflow declares (input, events, activity
// output) and inferred for literals and expressions. They are checks only:
// the programs expr compiles still see every variable as any, so a type
// here never changes what an expression does at run time.

// typeKind is the kind of a static type.
type typeKind uint8

const (
	tkAny typeKind = iota // anything; nothing is checked
	tkNull
	tkBool
	tkNumber // a JSON number (float64 at run time); intOnly narrows it to whole numbers
	tkString
	tkList
	tkObject
	tkTime     // a time.Time (now(), date(), instance.createdTime)
	tkDuration // a time.Duration (duration())
	tkUnion    // one of members
	// tkUnset is a variable that a path leaves unset: a wait's result after
	// a timeout whose onTimeout does not set it. It is null at run time.
	tkUnset
)

// typ is a static type. Types are immutable once built.
type typ struct {
	kind    typeKind
	intOnly bool // tkNumber: only whole numbers (JSON Schema "integer")
	elem    *typ // tkList: the elements' type
	// tkObject: the properties known. closed means no other property can
	// be there (additionalProperties: false, a literal object, an event or
	// activity output schema); listed means props came from a schema that
	// names them, so another name is likely a typo.
	props  map[string]*typ
	closed bool
	listed bool
	extra  *typ // tkObject: the type of the other properties; nil = any
	// what names the object in messages ("input", "the result of
	// ChargePayment").
	what    string
	members []*typ // tkUnion: at least two, none a union or any
	at      Pos    // tkUnset: the wait that may leave the variable unset
}

var (
	tAny      = &typ{kind: tkAny}
	tNull     = &typ{kind: tkNull}
	tBool     = &typ{kind: tkBool}
	tNumber   = &typ{kind: tkNumber}
	tInt      = &typ{kind: tkNumber, intOnly: true}
	tString   = &typ{kind: tkString}
	tTime     = &typ{kind: tkTime}
	tDuration = &typ{kind: tkDuration}
	tAnyList  = &typ{kind: tkList, elem: tAny}
	tAnyObj   = &typ{kind: tkObject}
)

func listOf(t *typ) *typ { return &typ{kind: tkList, elem: t} }

// maxMembers bounds a union; a variable that can hold more kinds of value
// than this is any for lint.
const maxMembers = 8

// alts are the members of t: itself unless it is a union.
func (t *typ) alts() []*typ {
	if t.kind == tkUnion {
		return t.members
	}
	return []*typ{t}
}

// isAny reports whether nothing can be said of t.
func (t *typ) isAny() bool { return t == nil || t.kind == tkAny }

// has reports whether some member of t is of kind k (or any).
func (t *typ) has(k typeKind) bool {
	for _, m := range t.alts() {
		if m.kind == k || m.kind == tkAny {
			return true
		}
	}
	return false
}

// unionOf is the type of a value that is of one of ts.
func unionOf(ts ...*typ) *typ {
	var ms []*typ
	for _, t := range ts {
		if t == nil {
			continue
		}
		for _, m := range t.alts() {
			if m.kind == tkAny {
				return tAny
			}
			ms = addMember(ms, m)
		}
	}
	switch {
	case len(ms) == 0:
		return tAny
	case len(ms) == 1:
		return ms[0]
	case len(ms) > maxMembers:
		return tAny
	}
	return &typ{kind: tkUnion, members: ms}
}

func addMember(ms []*typ, m *typ) []*typ {
	for i, x := range ms {
		switch {
		case x.kind != m.kind:
			continue
		case x.kind == tkNumber:
			if x.intOnly && !m.intOnly {
				ms[i] = tNumber
			}
			return ms
		case x.kind == tkList:
			ms[i] = listOf(unionOf(x.elem, m.elem))
			return ms
		case x.kind == tkUnset, x.kind == tkNull, x.kind == tkBool, x.kind == tkString, x.kind == tkTime, x.kind == tkDuration:
			return ms
		case x.kind == tkObject && x.String() == m.String():
			return ms
		}
	}
	return append(ms, m)
}

// withoutUnset is t with an unset variable read as null.
func (t *typ) withoutUnset() *typ {
	if !t.has(tkUnset) || t.kind == tkAny {
		return t
	}
	ms := make([]*typ, 0, len(t.alts()))
	for _, m := range t.alts() {
		if m.kind == tkUnset {
			m = tNull
		}
		ms = append(ms, m)
	}
	return unionOf(ms...)
}

// nonNull is t less null (what `x ?? y` knows of x when it is used).
func (t *typ) nonNull() *typ {
	var ms []*typ
	for _, m := range t.alts() {
		if m.kind != tkNull && m.kind != tkUnset {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return tNull
	}
	return unionOf(ms...)
}

// unsetAt returns the wait that may leave t unset.
func (t *typ) unsetAt() (Pos, bool) {
	for _, m := range t.alts() {
		if m.kind == tkUnset {
			return m.at, true
		}
	}
	return Pos{}, false
}

// String writes t as lint's messages show it: number, integer,
// list<string>, {amount: number, ...} (the dots: other properties may be
// there), string | null.
func (t *typ) String() string {
	var sb strings.Builder
	t.write(&sb, 0)
	return sb.String()
}

func (t *typ) write(sb *strings.Builder, depth int) {
	if depth > 4 {
		sb.WriteString("…")
		return
	}
	switch t.kind {
	case tkAny:
		sb.WriteString("any")
	case tkNull, tkUnset:
		sb.WriteString("null")
	case tkBool:
		sb.WriteString("boolean")
	case tkNumber:
		if t.intOnly {
			sb.WriteString("integer")
		} else {
			sb.WriteString("number")
		}
	case tkString:
		sb.WriteString("string")
	case tkTime:
		sb.WriteString("time")
	case tkDuration:
		sb.WriteString("duration")
	case tkList:
		sb.WriteString("list<")
		t.elem.write(sb, depth+1)
		sb.WriteString(">")
	case tkObject:
		sb.WriteString("{")
		for i, k := range t.propNames() {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(k)
			sb.WriteString(": ")
			t.props[k].write(sb, depth+1)
		}
		if !t.closed {
			if len(t.props) > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("...")
		}
		sb.WriteString("}")
	case tkUnion:
		for i, m := range t.members {
			if i > 0 {
				sb.WriteString(" | ")
			}
			m.write(sb, depth+1)
		}
	}
}

func (t *typ) propNames() []string {
	names := make([]string, 0, len(t.props))
	for k := range t.props {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// describe names what t is with an article, for "does not take a string
// and a number".
func (t *typ) describe() string {
	if t.kind == tkUnion {
		parts := make([]string, len(t.members))
		for i, m := range t.members {
			parts[i] = m.describe()
		}
		return strings.Join(parts, " or ")
	}
	switch t.kind {
	case tkNull, tkUnset:
		return "null"
	case tkBool:
		return "a boolean"
	case tkNumber:
		if t.intOnly {
			return "an integer"
		}
		return "a number"
	case tkString:
		return "a string"
	case tkList:
		return "a list"
	case tkObject:
		return "an object"
	case tkTime:
		return "a time"
	case tkDuration:
		return "a duration"
	}
	return "any value"
}

// literalType is the type of a JSON value written in the workflow: a
// literal object is closed, since the workflow says all it holds.
func literalType(v any) *typ {
	switch x := v.(type) {
	case nil:
		return tNull
	case bool:
		return tBool
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return tInt
		}
		return tNumber
	case string:
		return tString
	case []any:
		ts := make([]*typ, len(x))
		for i, e := range x {
			ts[i] = literalType(e)
		}
		if len(ts) == 0 {
			return tAnyList
		}
		return listOf(unionOf(ts...))
	case map[string]any:
		o := &typ{kind: tkObject, closed: true, props: make(map[string]*typ, len(x))}
		for k, e := range x {
			o.props[k] = literalType(e)
		}
		return o
	}
	return tAny
}

// maxSchemaDepth bounds how deep schemaType follows a schema (and its
// local $refs, which may be recursive).
const maxSchemaDepth = 8

// schemaType is the type of the values a JSON Schema accepts, as far as
// lint follows it: type, properties, additionalProperties, items, enum,
// const, anyOf/oneOf and local $refs. closedByDefault makes an object
// schema with properties and no additionalProperties closed: cairn checks
// events and activity results against their schemas, and a name they do
// not list is then more likely a typo than a hidden field.
func schemaType(root any, closedByDefault bool, what string) *typ {
	return schemaTypeAt(root, root, closedByDefault, what, 0)
}

func schemaTypeAt(root, s any, closedByDefault bool, what string, depth int) *typ {
	m, ok := s.(map[string]any)
	if !ok || depth > maxSchemaDepth {
		return tAny // true, false or too deep
	}
	if ref, ok := m["$ref"].(string); ok {
		if target, ok := localRef(root, ref); ok {
			return schemaTypeAt(root, target, closedByDefault, what, depth+1)
		}
		return tAny
	}
	if c, ok := m["const"]; ok {
		return literalType(c)
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 {
		ts := make([]*typ, len(e))
		for i, v := range e {
			ts[i] = literalType(v)
			if ts[i].kind == tkObject {
				ts[i] = tAnyObj
			}
		}
		return unionOf(ts...)
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if alts, ok := m[k].([]any); ok && len(alts) > 0 {
			ts := make([]*typ, len(alts))
			for i, a := range alts {
				ts[i] = schemaTypeAt(root, a, closedByDefault, what, depth+1)
			}
			return unionOf(ts...)
		}
	}
	var kinds []string
	switch t := m["type"].(type) {
	case string:
		kinds = []string{t}
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok {
				kinds = append(kinds, s)
			}
		}
	default:
		switch {
		case m["properties"] != nil || m["additionalProperties"] != nil:
			kinds = []string{"object"}
		case m["items"] != nil:
			kinds = []string{"array"}
		default:
			return tAny
		}
	}
	ts := make([]*typ, 0, len(kinds))
	for _, k := range kinds {
		switch k {
		case "null":
			ts = append(ts, tNull)
		case "boolean":
			ts = append(ts, tBool)
		case "integer":
			ts = append(ts, tInt)
		case "number":
			ts = append(ts, tNumber)
		case "string":
			ts = append(ts, tString)
		case "array":
			ts = append(ts, listOf(schemaTypeAt(root, m["items"], closedByDefault, "", depth+1)))
		case "object":
			ts = append(ts, objectSchemaType(root, m, closedByDefault, what, depth))
		default:
			return tAny
		}
	}
	return unionOf(ts...)
}

func objectSchemaType(root any, m map[string]any, closedByDefault bool, what string, depth int) *typ {
	o := &typ{kind: tkObject, what: what}
	props, _ := m["properties"].(map[string]any)
	if len(props) > 0 {
		o.props = make(map[string]*typ, len(props))
		o.listed = true
		for k, ps := range props {
			name := k
			if what != "" {
				name = what + "." + k
			}
			o.props[k] = schemaTypeAt(root, ps, closedByDefault, name, depth+1)
		}
	}
	switch ap := m["additionalProperties"].(type) {
	case bool:
		o.closed = !ap
		if ap {
			o.listed = false // the schema says other names are welcome
		}
	case map[string]any:
		o.extra = schemaTypeAt(root, ap, closedByDefault, "", depth+1)
		o.listed = false
	case nil:
		if _, ok := m["patternProperties"]; ok {
			o.listed = false
		} else if closedByDefault && len(props) > 0 {
			o.closed = true
		}
	}
	if up, ok := m["unevaluatedProperties"].(bool); ok && !up {
		o.closed = true
	}
	return o
}

// localRef follows a "#/..." JSON pointer inside root.
func localRef(root any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#") {
		return nil, false
	}
	cur := root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}
