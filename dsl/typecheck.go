package dsl

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// This file infers the static type of every expression (types.go) and
// reports what cannot work whatever the values: a condition that is not a
// boolean, an operator on types it does not take, a property an object
// cannot have, a wait result read where a timeout may have left it unset.
// It reports only what is certain (or, as a warning, very likely): where
// a type is any or one of several, some of which work, it says nothing.

// Issue codes of the type checks (see codes.go for the others).
const (
	CodeExprUnlisted = "expr-unlisted-field" // a property an open object's schema does not list (warning)
	CodeMaybeUnset   = "maybe-unset"         // a wait result read where a timeout may have left it unset (warning)
	CodeUndeclared   = "undeclared-activity" // a step calls an activity `activities:` does not declare
	CodeNoTimeout    = "worker-without-timeout"
	CodeNotTemplate  = "not-a-template" // ${ } in a field that takes no expressions
)

// typer infers the types inside one expression.
type typer struct {
	p     *parser
	c     *compiled
	loud  bool
	env   *tenv
	preds []*typ          // the element types of the enclosing predicates, innermost last
	lets  map[string]*typ // let-bound names in scope
	said  map[string]bool // unset warnings given in this expression, by name
	input *typ            // the type of `input`
}

// check infers the type of the compiled expression c in env, reporting
// problems when loud. A program that did not compile has type any: its
// problem is reported already.
func (p *parser) check(c *compiled, env *tenv, loud bool) *typ {
	if c == nil || c.prog == nil || c.tree == nil {
		return tAny
	}
	t := &typer{p: p, c: c, loud: loud, env: env, input: env.input}
	out := t.infer(c.tree)
	if c.asBool {
		t.strict(c.tree, out)
		if !out.has(tkBool) {
			t.errorf(nil, CodeExprNotBool, "a condition must yield a boolean, but this expression yields %s%s", out.describe(), boolHint(out))
		}
		return tBool
	}
	return out
}

func boolHint(t *typ) string {
	switch {
	case t.has(tkNumber):
		return "; compare it, as in x > 0"
	case t.has(tkString):
		return "; compare it, as in x == \"yes\" or x != \"\""
	case t.has(tkList):
		return "; test its length, as in len(x) > 0"
	}
	return ""
}

func (t *typer) pos(n ast.Node) Pos {
	if n == nil {
		return t.c.at(leadingSpace(t.c.src))
	}
	return t.c.at(n.Location().From)
}

func (t *typer) errorf(n ast.Node, code, format string, args ...any) {
	if t.loud {
		t.p.errorf(t.pos(n), code, format, args...)
	}
}

func (t *typer) warnf(n ast.Node, code, format string, args ...any) {
	if t.loud {
		t.p.warnf(t.pos(n), code, format, args...)
	}
}

// strict warns when n, used where null fails, is a wait result that a
// timeout may leave unset.
func (t *typer) strict(n ast.Node, ty *typ) {
	at, ok := ty.unsetAt()
	if !ok {
		return
	}
	name := nodeText(n)
	if name == "" || t.said[name] {
		return
	}
	if t.said == nil {
		t.said = map[string]bool{}
	}
	t.said[name] = true
	t.warnf(n, CodeMaybeUnset, "'%s' may be unset here: when the wait at %s times out, its onTimeout does not set it (set it there, or write %s ?? <default>)", name, at, name)
}

// nodeText names an identifier or a chain of properties, for messages; ""
// for anything else.
func nodeText(n ast.Node) string {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return x.Value
	case *ast.PointerNode:
		if x.Name == "" {
			return "#"
		}
		return "#" + x.Name
	case *ast.ChainNode:
		return nodeText(x.Node)
	case *ast.MemberNode:
		base := nodeText(x.Node)
		if s, ok := x.Property.(*ast.StringNode); ok && base != "" {
			if base == "#" {
				return "." + s.Value
			}
			return base + "." + s.Value
		}
	}
	return ""
}

func (t *typer) infer(n ast.Node) *typ {
	switch x := n.(type) {
	case nil:
		return tAny
	case *ast.NilNode:
		return tNull
	case *ast.BoolNode:
		return tBool
	case *ast.IntegerNode:
		return tInt
	case *ast.FloatNode:
		return literalType(x.Value)
	case *ast.StringNode:
		return tString
	case *ast.ConstantNode:
		return literalType(x.Value)
	case *ast.IdentifierNode:
		return t.ident(x.Value)
	case *ast.PointerNode:
		switch x.Name {
		case "":
			if len(t.preds) > 0 {
				return t.preds[len(t.preds)-1]
			}
		case "index":
			return tInt
		}
		return tAny
	case *ast.UnaryNode:
		v := t.infer(x.Node)
		t.strict(x.Node, v)
		switch x.Operator {
		case "!", "not":
			if !v.has(tkBool) {
				t.errorf(x, CodeExprType, "'%s' takes a boolean, not %s", x.Operator, v.describe())
			}
			return tBool
		case "-", "+":
			if !v.has(tkNumber) && !v.has(tkDuration) {
				t.errorf(x, CodeExprType, "unary '%s' takes a number, not %s", x.Operator, v.describe())
				return tNumber
			}
			return v.nonNull()
		}
		return tAny
	case *ast.BinaryNode:
		return t.binary(x)
	case *ast.ChainNode:
		return unionOf(t.infer(x.Node), tNull)
	case *ast.MemberNode:
		return t.member(x)
	case *ast.SliceNode:
		v := t.infer(x.Node)
		t.infer(x.From)
		t.infer(x.To)
		if v.kind == tkList || v.kind == tkString {
			return v
		}
		return tAny
	case *ast.CallNode:
		for _, a := range x.Arguments {
			t.infer(a)
		}
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == "now" {
			return tTime
		}
		if m, ok := x.Callee.(*ast.MemberNode); ok {
			t.infer(m.Node)
		}
		return tAny
	case *ast.BuiltinNode:
		return t.builtin(x)
	case *ast.PredicateNode:
		return t.infer(x.Node)
	case *ast.ConditionalNode:
		c := t.infer(x.Cond)
		t.strict(x.Cond, c)
		if !c.has(tkBool) {
			t.errorf(x.Cond, CodeExprNotBool, "the condition of '?:' must be a boolean, but it is %s%s", c.describe(), boolHint(c))
		}
		return unionOf(t.infer(x.Exp1), t.infer(x.Exp2))
	case *ast.VariableDeclaratorNode:
		v := t.infer(x.Value)
		old, had := t.lets[x.Name]
		if t.lets == nil {
			t.lets = map[string]*typ{}
		}
		t.lets[x.Name] = v
		out := t.infer(x.Expr)
		if had {
			t.lets[x.Name] = old
		} else {
			delete(t.lets, x.Name)
		}
		return out
	case *ast.SequenceNode:
		out := tAny
		for _, e := range x.Nodes {
			out = t.infer(e)
		}
		return out
	case *ast.ArrayNode:
		if len(x.Nodes) == 0 {
			return tAnyList
		}
		ts := make([]*typ, len(x.Nodes))
		for i, e := range x.Nodes {
			ts[i] = t.infer(e).withoutUnset()
		}
		return listOf(unionOf(ts...))
	case *ast.MapNode:
		o := &typ{kind: tkObject, closed: true, props: map[string]*typ{}}
		for _, pn := range x.Pairs {
			pair, ok := pn.(*ast.PairNode)
			if !ok {
				continue
			}
			v := t.infer(pair.Value).withoutUnset()
			if k, ok := pair.Key.(*ast.StringNode); ok {
				o.props[k.Value] = v
				continue
			}
			t.infer(pair.Key)
			o.closed = false // a computed key: any name may be there
		}
		return o
	}
	return tAny
}

func (t *typer) ident(name string) *typ {
	if v, ok := t.lets[name]; ok {
		return v
	}
	switch name {
	case "input":
		return t.input
	case "instance":
		if !t.env.binding {
			return instanceT
		}
	}
	if v, ok := t.env.vars[name]; ok {
		return v
	}
	return tAny
}

var instanceT = &typ{kind: tkObject, closed: true, what: "instance", props: map[string]*typ{"id": tString, "name": tString, "createdTime": tTime}}

// errorT is the type of `error` in onError and catch steps.
var errorT = &typ{kind: tkObject, listed: true, what: "error", props: map[string]*typ{
	"type": tString, "message": tString, "step": tString, "attempt": tInt, "data": tAny}}

// binary checks an operator's operands and returns its result's type.
func (t *typer) binary(x *ast.BinaryNode) *typ {
	l, r := t.infer(x.Left), t.infer(x.Right)
	op := x.Operator
	switch op {
	case "==", "!=":
		return tBool
	case "??":
		return unionOf(l.nonNull(), r)
	case "and", "or", "&&", "||":
		for _, side := range []struct {
			n  ast.Node
			ty *typ
		}{{x.Left, l}, {x.Right, r}} {
			t.strict(side.n, side.ty)
			if !side.ty.has(tkBool) {
				t.errorf(side.n, CodeExprType, "'%s' takes booleans, but this is %s%s", op, side.ty.describe(), boolHint(side.ty))
			}
		}
		return tBool
	}
	if op != "in" {
		t.strict(x.Left, l)
	}
	t.strict(x.Right, r)
	if l.isAny() || r.isAny() {
		return anyResult(op)
	}
	var outs []*typ
	for _, a := range l.alts() {
		for _, b := range r.alts() {
			if out := opResult(op, a, b); out != nil {
				outs = append(outs, out)
			}
		}
	}
	if len(outs) == 0 {
		t.errorf(x, CodeExprType, "operator '%s' does not take %s and %s%s", op, l.describe(), r.describe(), opHint(op, l, r))
		return anyResult(op)
	}
	if op == "%" {
		for _, side := range []ast.Node{x.Left, x.Right} {
			if f, ok := side.(*ast.FloatNode); ok && f.Value != math.Trunc(f.Value) {
				t.errorf(side, CodeExprType, "'%%' takes whole numbers, and %v is not one", f.Value)
			}
		}
	}
	return unionOf(outs...)
}

func anyResult(op string) *typ {
	switch op {
	case "<", ">", "<=", ">=", "in", "contains", "startsWith", "endsWith", "matches":
		return tBool
	case "%":
		return tInt
	case "..":
		return listOf(tInt)
	}
	return tAny
}

func opHint(op string, l, r *typ) string {
	switch {
	case op == "+" && ((l.has(tkString) && r.has(tkNumber)) || (l.has(tkNumber) && r.has(tkString))):
		return "; to join text, convert the number with string(...), or write \"${ }\" around each part"
	case (op == "+" || op == "-" || op == "*" || op == "/") && (l.has(tkBool) || r.has(tkBool)):
		return "; a boolean is not a number (use x ? 1 : 0)"
	case op == "in" && (r.has(tkString)):
		return "; to look for text in a string use 'contains'"
	case l.has(tkNull) || r.has(tkNull):
		return "; give a default with ??"
	}
	return ""
}

// opResult is the type of a op b for two plain (non-union) types, or nil
// when expr refuses them at run time.
func opResult(op string, a, b *typ) *typ {
	if a.kind == tkAny || b.kind == tkAny {
		return anyResult(op)
	}
	num := a.kind == tkNumber && b.kind == tkNumber
	both := func(k typeKind) bool { return a.kind == k && b.kind == k }
	switch op {
	case "+":
		switch {
		case num:
			if a.intOnly && b.intOnly {
				return tInt
			}
			return tNumber
		case both(tkString):
			return tString
		case both(tkList):
			return listOf(unionOf(a.elem, b.elem))
		case both(tkDuration):
			return tDuration
		case a.kind == tkTime && b.kind == tkDuration, a.kind == tkDuration && b.kind == tkTime:
			return tTime
		}
	case "-":
		switch {
		case num:
			if a.intOnly && b.intOnly {
				return tInt
			}
			return tNumber
		case both(tkTime), both(tkDuration):
			return tDuration
		case a.kind == tkTime && b.kind == tkDuration:
			return tTime
		}
	case "*":
		switch {
		case num:
			if a.intOnly && b.intOnly {
				return tInt
			}
			return tNumber
		case a.kind == tkDuration && b.kind == tkNumber, a.kind == tkNumber && b.kind == tkDuration:
			return tDuration
		}
	case "/":
		if num || (a.kind == tkDuration && (b.kind == tkNumber || b.kind == tkDuration)) {
			return tNumber
		}
	case "%":
		if num {
			return tInt
		}
	case "**", "^":
		if num {
			return tNumber
		}
	case "<", ">", "<=", ">=":
		if num || both(tkString) || both(tkTime) || both(tkDuration) {
			return tBool
		}
	case "contains", "startsWith", "endsWith", "matches":
		if both(tkString) {
			return tBool
		}
	case "in":
		switch b.kind {
		case tkList, tkNull, tkUnset:
			return tBool
		case tkObject:
			if a.kind == tkString {
				return tBool
			}
		}
	case "..":
		if num {
			return listOf(tInt)
		}
	default:
		return tAny
	}
	return nil
}

// member types x.y, x[i] and x?.y.
func (t *typer) member(x *ast.MemberNode) *typ {
	obj := t.infer(x.Node)
	prop, isName := x.Property.(*ast.StringNode)
	if !isName {
		t.infer(x.Property)
	}
	if x.Method {
		return tAny
	}
	if !x.Optional {
		t.strict(x.Node, obj)
	}
	if obj.isAny() {
		return tAny
	}
	var outs []*typ
	var listedMissing, closedMissing bool
	var noProps []*typ // members that can have no named property
	var names []string
	for _, m := range obj.alts() {
		switch m.kind {
		case tkAny:
			return tAny
		case tkNull, tkUnset:
			outs = append(outs, tNull)
		case tkObject:
			if !isName {
				if m.extra != nil {
					outs = append(outs, unionOf(m.extra, tNull))
				} else if m.closed && len(m.props) > 0 {
					ps := make([]*typ, 0, len(m.props))
					for _, k := range m.propNames() {
						ps = append(ps, m.props[k])
					}
					outs = append(outs, unionOf(append(ps, tNull)...))
				} else {
					outs = append(outs, tAny)
				}
				continue
			}
			names = append(names, m.propNames()...)
			if pt, ok := m.props[prop.Value]; ok {
				outs = append(outs, pt)
				continue
			}
			switch {
			case m.closed:
				closedMissing = true
			case m.extra != nil:
				outs = append(outs, unionOf(m.extra, tNull))
			case m.listed:
				listedMissing = true
				outs = append(outs, tNull)
			default:
				outs = append(outs, tAny)
			}
		case tkList:
			if isName {
				noProps = append(noProps, m)
				continue
			}
			outs = append(outs, m.elem)
		case tkString:
			if isName {
				noProps = append(noProps, m)
				continue
			}
			outs = append(outs, tString)
		case tkTime, tkDuration:
			outs = append(outs, tAny)
		default:
			noProps = append(noProps, m)
		}
	}
	what := nodeText(x.Node)
	if what == "" {
		what = "the value"
		for _, m := range obj.alts() {
			if m.kind == tkObject && m.what != "" {
				what = m.what
				break
			}
		}
	}
	if isName && len(outs) == 0 {
		if closedMissing {
			t.errorf(x.Property, CodeExprField, "%s has no property '%s'%s%s", what, prop.Value, suggest(prop.Value, names), typeNote(obj))
		} else if len(noProps) > 0 {
			t.errorf(x.Property, CodeExprType, "%s is %s, which has no property '%s'", what, unionOf(noProps...).describe(), prop.Value)
		}
		return tAny
	}
	if isName && listedMissing && !hasAnyOut(outs) && allNull(outs) {
		t.warnf(x.Property, CodeExprUnlisted, "the schema of %s does not list property '%s'%s; it is null unless the value has it", what, prop.Value, suggest(prop.Value, names))
	}
	if !isName && len(outs) == 0 {
		return tAny
	}
	return unionOf(outs...)
}

func hasAnyOut(ts []*typ) bool {
	for _, t := range ts {
		if t.kind == tkAny {
			return true
		}
	}
	return false
}

func allNull(ts []*typ) bool {
	for _, t := range ts {
		if t.kind != tkNull {
			return false
		}
	}
	return true
}

// typeNote shows a type in a message when it is short enough to read.
func typeNote(t *typ) string {
	s := t.String()
	if len(s) > 100 {
		return ""
	}
	return "; its type is " + s
}

// elemOf is the element type of a list type, for the items of a loop.
func elemOf(t *typ) *typ {
	var ts []*typ
	for _, m := range t.alts() {
		switch m.kind {
		case tkList:
			ts = append(ts, m.elem)
		case tkNull, tkUnset:
		default:
			return tAny
		}
	}
	return unionOf(ts...)
}

// builtins whose result type does not depend on their arguments.
var builtinResults = map[string]*typ{
	"len": tInt, "count": tInt, "findIndex": tInt, "findLastIndex": tInt, "indexOf": tInt, "lastIndexOf": tInt, "int": tInt,
	"float": tNumber, "abs": tNumber, "ceil": tNumber, "floor": tNumber, "round": tNumber, "mean": tNumber, "median": tNumber,
	"all": tBool, "any": tBool, "none": tBool, "one": tBool, "hasPrefix": tBool, "hasSuffix": tBool,
	"string": tString, "upper": tString, "lower": tString, "trim": tString, "trimPrefix": tString, "trimSuffix": tString,
	"replace": tString, "repeat": tString, "join": tString, "toJSON": tString, "toBase64": tString, "fromBase64": tString, "type": tString,
	"split": listOf(tString), "splitAfter": listOf(tString), "keys": listOf(tString), "values": tAnyList, "toPairs": listOf(tAnyList),
	"date": tTime, "now": tTime, "duration": tDuration, "groupBy": tAnyObj,
}

// builtins that take text.
var textBuiltins = map[string]bool{"upper": true, "lower": true, "trim": true, "trimPrefix": true, "trimSuffix": true,
	"split": true, "splitAfter": true, "replace": true, "repeat": true, "hasPrefix": true, "hasSuffix": true, "indexOf": true, "lastIndexOf": true, "fromBase64": true}

func (t *typer) builtin(x *ast.BuiltinNode) *typ {
	args := make([]*typ, len(x.Arguments))
	var elem *typ
	for i, a := range x.Arguments {
		if p, ok := a.(*ast.PredicateNode); ok && i > 0 {
			if elem == nil {
				elem = elemOf(args[0])
			}
			t.preds = append(t.preds, elem)
			args[i] = t.infer(p.Node)
			t.preds = t.preds[:len(t.preds)-1]
			continue
		}
		args[i] = t.infer(a)
	}
	if x.Map != nil {
		t.preds = append(t.preds, elemOf(args[0]))
		t.infer(x.Map)
		t.preds = t.preds[:len(t.preds)-1]
	}
	if textBuiltins[x.Name] && len(args) > 0 {
		if a := args[0]; !a.isAny() && !a.has(tkString) {
			t.errorf(x.Arguments[0], CodeExprType, "%s takes a string, not %s", x.Name, a.describe())
		}
	}
	if x.Name == "len" && len(args) == 1 {
		if a := args[0]; !a.isAny() && !a.has(tkString) && !a.has(tkList) && !a.has(tkObject) {
			t.errorf(x.Arguments[0], CodeExprType, "len takes a string, a list or an object, not %s", a.describe())
		}
	}
	if out, ok := builtinResults[x.Name]; ok {
		return out
	}
	switch x.Name {
	case "filter", "sortBy", "sort", "reverse", "take", "uniq":
		if len(args) > 0 && args[0].kind == tkList {
			return args[0]
		}
		return tAnyList
	case "map":
		if len(args) > 1 {
			return listOf(args[1].withoutUnset())
		}
		return tAnyList
	case "find", "findLast", "first", "last":
		if len(args) > 0 {
			return unionOf(elemOf(args[0]), tNull)
		}
	case "concat", "flatten":
		return tAnyList
	}
	return tAny
}

// ---- The flow of types through the steps. ----

// tenv is what the type checker knows at one place of the workflow: the
// type of `input` and of each variable some path has set. A variable
// missing from vars is any (the scope check reports names never set).
type tenv struct {
	input   *typ
	binding bool
	vars    map[string]*typ
}

func (e *tenv) clone() *tenv {
	n := &tenv{input: e.input, binding: e.binding, vars: make(map[string]*typ, len(e.vars))}
	for k, v := range e.vars {
		n.vars[k] = v
	}
	return n
}

// merge joins the environments of paths that meet; a nil one is a path
// that ended (return, fail). A variable set on some paths only is null on
// the others, unless it is already unset.
func merge(envs ...*tenv) *tenv {
	var live []*tenv
	for _, e := range envs {
		if e != nil {
			live = append(live, e)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	out := live[0].clone()
	names := map[string]bool{}
	for _, e := range live {
		for k := range e.vars {
			names[k] = true
		}
	}
	for k := range names {
		var ts []*typ
		for _, e := range live {
			if v, ok := e.vars[k]; ok {
				ts = append(ts, v)
			} else {
				ts = append(ts, tNull)
			}
		}
		out.vars[k] = unionOf(ts...)
	}
	return out
}

func (e *tenv) same(o *tenv) bool {
	if e == nil || o == nil {
		return e == o
	}
	if len(e.vars) != len(o.vars) {
		return false
	}
	for k, v := range e.vars {
		w, ok := o.vars[k]
		if !ok || v.String() != w.String() {
			return false
		}
	}
	return true
}

// typeFlow is the type checking pass: after every expression compiled,
// it walks the steps as the interpreter would run them, with the type of
// each variable on the way.
type typeFlow struct {
	p *parser
	// outputs holds the result type of each declared activity.
	outputs map[string]*typ
	// quiet counts the passes over a loop body that only look for the
	// types its variables settle to; they report nothing.
	quiet int
}

func (p *parser) checkTypes() {
	if p.full {
		return
	}
	f := &typeFlow{p: p, outputs: map[string]*typ{}}
	input := tAny
	if p.wf.Input != nil {
		input = schemaType(p.wf.Input.Raw, false, "input")
	}
	names := make([]string, 0, len(p.wf.Activities))
	for name := range p.wf.Activities {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f.activity(name, p.wf.Activities[name])
	}
	env := &tenv{input: input, vars: map[string]*typ{}}
	f.steps(p.wf.Steps, env)
	f.activityNames(p.wf.Steps)
}

// activity types an activity's result and checks its binding.
func (f *typeFlow) activity(name string, a *ActivityOptions) {
	in := tAny
	if a.Input != nil {
		in = schemaType(a.Input.Raw, false, "input")
	}
	out := tAny
	if a.Output != nil {
		out = schemaType(a.Output.Raw, true, "the result of "+name)
	}
	if b := a.Binding; b != nil {
		benv := &tenv{input: in, binding: true}
		switch b.Kind {
		case BindExpr:
			if t := f.value(b.Expr, benv); a.Output == nil {
				out = t
			}
		case BindHTTP:
			for _, h := range sortedKeys(b.Headers) {
				f.value(b.Headers[h], benv)
			}
		}
		f.bindingTemplates(name, a, benv)
	}
	f.outputs[name] = out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *typeFlow) loud() bool { return f.quiet == 0 }

// value types a Value and checks its expressions.
func (f *typeFlow) value(v *Value, env *tenv) *typ {
	if v == nil {
		return tNull
	}
	if v.static {
		return literalType(v.lit)
	}
	switch v.kind {
	case valExpr:
		return f.p.check(v.expr, env, f.loud()).withoutUnset()
	case valInterp:
		for _, pt := range v.parts {
			if pt.expr != nil {
				f.p.check(pt.expr, env, f.loud())
			}
		}
		return tString
	case valList:
		ts := make([]*typ, len(v.items))
		for i, it := range v.items {
			ts[i] = f.value(it, env)
		}
		if len(ts) == 0 {
			return tAnyList
		}
		return listOf(unionOf(ts...))
	case valMap:
		o := &typ{kind: tkObject, closed: true, props: make(map[string]*typ, len(v.keys))}
		for i, k := range v.keys {
			o.props[k] = f.value(v.fields[i], env)
		}
		return o
	}
	return tAny
}

func (f *typeFlow) cond(c *Condition, env *tenv) {
	if c != nil {
		f.p.check(c.c, env, f.loud())
	}
}

// steps runs the types through a list; the result is nil when no path
// gets to its end.
func (f *typeFlow) steps(list []Step, env *tenv) *tenv {
	for _, s := range list {
		if env == nil {
			return nil
		}
		env = f.step(s, env)
	}
	return env
}

func (f *typeFlow) step(s Step, env *tenv) *tenv {
	b := s.Base()
	f.cond(b.If, env)
	before := env
	if b.If != nil || b.OnError != nil {
		env = env.clone()
	}
	after := f.kind(s, env)
	if b.OnError != nil {
		// The error may come before or after the step's effect.
		eenv := merge(before.clone(), after)
		if eenv == nil {
			eenv = before.clone()
		} else {
			eenv = eenv.clone()
		}
		eenv.vars["error"] = errorT
		end := f.steps(b.OnError, eenv)
		if end != nil {
			delete(end.vars, "error")
		}
		after = merge(after, end)
	}
	if b.If != nil {
		after = merge(before, after)
	}
	return after
}

func (f *typeFlow) kind(s Step, env *tenv) *tenv {
	switch s := s.(type) {
	case *ActivityStep:
		f.value(s.Input, env)
		if s.Result != "" {
			out, ok := f.outputs[s.Activity]
			if !ok {
				out = tAny
			}
			env.vars[s.Result] = out
		}
		return env
	case *WaitStep:
		return f.wait(s, env)
	case *SetStatusStep:
		f.value(s.Value, env)
		return env
	case *SetStep:
		for _, a := range s.Vars {
			env.vars[a.Name] = f.value(a.Value, env)
		}
		return env
	case *SwitchStep:
		var ends []*tenv
		for _, c := range s.Cases {
			f.cond(c.When, env)
		}
		for _, c := range s.Cases {
			ends = append(ends, f.steps(c.Steps, env.clone()))
		}
		if s.HasDefault {
			ends = append(ends, f.steps(s.Default, env.clone()))
		} else {
			ends = append(ends, env)
		}
		return merge(ends...)
	case *ReturnStep:
		f.value(s.Value, env)
		return nil
	case *FailStep:
		f.value(s.Error, env)
		f.value(s.Message, env)
		f.value(s.Data, env)
		return nil
	case *ContinueAsNewStep:
		f.value(s.Input, env)
		return nil
	case *WhileStep:
		return f.while(s, env)
	case *TryStep:
		end := f.steps(s.Steps, env.clone())
		cenv := merge(env.clone(), end).clone()
		name := s.Catch.As
		old, had := cenv.vars[name]
		cenv.vars[name] = errorT
		cend := f.steps(s.Catch.Steps, cenv)
		if cend != nil {
			if had {
				cend.vars[name] = old
			} else {
				delete(cend.vars, name)
			}
		}
		return merge(end, cend)
	case *ForEachStep:
		items := f.value(s.Items, env)
		if !items.isAny() && !items.has(tkList) && !items.has(tkNull) && s.Items != nil && !s.Items.static {
			if f.loud() {
				f.p.errorf(s.Items.Pos, CodeExprType, "'items' must be a list, but it is %s", items.describe())
			}
		}
		benv := env.clone()
		benv.vars[s.As] = elemOf(items)
		benv.vars[IndexVar] = tNumber
		f.steps(s.Steps, benv)
		env = f.progress(s.OnItem, s.As, elemOf(items), env)
		if s.Result != "" {
			env.vars[s.Result] = listOf(tAnyObj)
		}
		return env
	case *ParallelStep:
		for _, br := range s.Branches {
			f.steps(br.Steps, env.clone())
		}
		env = f.progress(s.OnBranch, "", nil, env)
		if s.Result != "" {
			env.vars[s.Result] = listOf(tAnyObj)
		}
		return env
	case *CallStep:
		f.value(s.Input, env)
		if s.Result != "" {
			env.vars[s.Result] = tAny
		}
		return env
	}
	panic(fmt.Sprintf("dsl: unknown step type %T", s))
}

func (f *typeFlow) wait(s *WaitStep, env *tenv) *tenv {
	if s.Duration != nil || s.Until != nil {
		f.value(s.Duration, env)
		f.value(s.Until, env)
		return env
	}
	f.value(s.Timeout, env)
	payload := func(name string) *typ {
		if sch, ok := f.p.wf.Events[name]; ok {
			return schemaType(sch.Raw, true, "the payload of "+name)
		}
		return tAny
	}
	var result *typ
	switch {
	case s.Event != "":
		result = payload(s.Event)
	case s.All:
		o := &typ{kind: tkObject, closed: true, props: map[string]*typ{}}
		for _, e := range s.Events {
			o.props[e] = payload(e)
		}
		result = o
	default:
		ts := make([]*typ, len(s.Events))
		for i, e := range s.Events {
			ts[i] = payload(e)
		}
		result = &typ{kind: tkObject, closed: true, props: map[string]*typ{"event": tString, "data": unionOf(ts...)}}
	}
	if !s.HasOnTimeout {
		if s.Result != "" {
			env.vars[s.Result] = result
		}
		return env
	}
	tenv0 := env.clone()
	if s.All && s.Result != "" {
		tenv0.vars[s.Result] = result // the events that came
	}
	end := f.steps(s.OnTimeout, tenv0)
	got := env.clone()
	if s.Result != "" {
		got.vars[s.Result] = result
		if end != nil {
			if _, set := end.vars[s.Result]; !set {
				end = end.clone()
				end.vars[s.Result] = &typ{kind: tkUnset, at: s.Pos}
			}
		}
	}
	return merge(got, end)
}

// progress types an onItem or onBranch list: it sees env, the counts, the
// index, the ended run's variables and (onItem) the item, and it may not
// run at all (no items), so what it sets is merged with env.
func (f *typeFlow) progress(list []Step, item string, itemT *typ, env *tenv) *tenv {
	if len(list) == 0 {
		return env
	}
	henv := env.clone()
	henv.vars[DoneVar], henv.vars[TotalVar], henv.vars[IndexVar] = tNumber, tNumber, tNumber
	henv.vars[ResultVar] = tAnyObj
	if item != "" {
		henv.vars[item] = itemT
	}
	end := f.steps(list, henv)
	if end != nil {
		for _, n := range append([]string{item}, ProgressVars...) {
			if t, had := env.vars[n]; had {
				end.vars[n] = t
			} else {
				delete(end.vars, n)
			}
		}
	}
	return merge(env, end)
}

// maxLoopPasses bounds the quiet passes over a loop body that look for
// the types its variables settle to; what has not settled then is any.
const maxLoopPasses = 2

func (f *typeFlow) while(s *WhileStep, env *tenv) *tenv {
	// The condition and the body see what earlier iterations set.
	cur := env
	settled := false
	if f.quiet == 0 {
		f.quiet++
		for i := 0; i < maxLoopPasses && !settled; i++ {
			end := f.steps(s.Steps, cur.clone())
			next := merge(cur, end)
			settled = next.same(cur)
			cur = next
		}
		f.quiet--
	}
	if !settled {
		cur = cur.clone()
		for _, name := range assignedIn(s.Steps) {
			cur.vars[name] = tAny
		}
	}
	f.cond(s.Condition, cur)
	end := f.steps(s.Steps, cur.clone())
	return merge(cur, end)
}

// assignedIn lists the variables a list of steps may set.
func assignedIn(list []Step) []string {
	var out []string
	var walk func([]Step)
	walk = func(list []Step) {
		for _, s := range list {
			b := s.Base()
			walk(b.OnError)
			switch s := s.(type) {
			case *ActivityStep:
				out = append(out, s.Result)
			case *WaitStep:
				out = append(out, s.Result)
				walk(s.OnTimeout)
			case *SetStep:
				for _, a := range s.Vars {
					out = append(out, a.Name)
				}
			case *SwitchStep:
				for _, c := range s.Cases {
					walk(c.Steps)
				}
				walk(s.Default)
			case *WhileStep:
				walk(s.Steps)
			case *TryStep:
				walk(s.Steps)
				walk(s.Catch.Steps)
			case *ForEachStep:
				out = append(out, s.Result)
				walk(s.OnItem)
			case *ParallelStep:
				out = append(out, s.Result)
				walk(s.OnBranch)
			case *CallStep:
				out = append(out, s.Result)
			}
		}
	}
	walk(list)
	return out
}

// activityNames checks that each activity a step calls is declared, when
// the workflow declares any (one that declares none predates the check and
// is left alone): an undeclared name is an error, with a suggestion when it
// is one edit or two from a declared name.
func (f *typeFlow) activityNames(list []Step) {
	decl := f.p.wf.Activities
	if len(decl) == 0 {
		return
	}
	names := sortedKeys(decl)
	seen := map[string]bool{}
	var walk func([]Step)
	walk = func(list []Step) {
		for _, s := range list {
			b := s.Base()
			if a, ok := s.(*ActivityStep); ok && a.Activity != "" {
				if _, ok := decl[a.Activity]; !ok && !seen[a.Activity+"@"+b.Pos.String()] {
					seen[a.Activity+"@"+b.Pos.String()] = true
					at := f.p.activityPos[a]
					if hint := suggest(a.Activity, names); hint != "" {
						f.p.errorf(at, CodeUndeclared, "activity '%s' is not declared under 'activities'%s", a.Activity, hint)
					} else {
						f.p.errorf(at, CodeUndeclared, "activity '%s' is not declared under 'activities' (declared: %s); if an external worker runs it, declare it as '%s: {worker: true, timeout: ...}'", a.Activity, strings.Join(names, ", "), a.Activity)
					}
				}
			}
			forEachBlock(s, walk)
		}
	}
	walk(list)
}

// forEachBlock calls fn on every step list directly inside s.
func forEachBlock(s Step, fn func([]Step)) {
	fn(s.Base().OnError)
	switch s := s.(type) {
	case *WaitStep:
		fn(s.OnTimeout)
	case *SwitchStep:
		for _, c := range s.Cases {
			fn(c.Steps)
		}
		fn(s.Default)
	case *WhileStep:
		fn(s.Steps)
	case *TryStep:
		fn(s.Steps)
		fn(s.Catch.Steps)
	case *ForEachStep:
		fn(s.Steps)
		fn(s.OnItem)
	case *ParallelStep:
		for _, br := range s.Branches {
			fn(br.Steps)
		}
		fn(s.OnBranch)
	}
}
