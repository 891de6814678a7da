package dsl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"
)

const (
	// MaxExprNodes bounds the size of one expression at compile time.
	MaxExprNodes = 1000
	// MaxExprMemory is the run-time memory budget of one evaluation, in the
	// units of expr's VM: one per element of a list, map or range its own
	// opcodes build. A runaway range or map fails its step instead of eating
	// the engine's memory. The rest (text, lists built by functions, work)
	// is bounded by the limits in budget.go.
	MaxExprMemory = 1_000_000
)

// Reserved names: the expression environment defines them, so no `result:`
// or `set:` may take them.
var reservedNames = map[string]bool{"input": true, "instance": true, "now": true, "error": true}

// keywords of the expression language, which cannot be variable names.
var exprKeywords = map[string]bool{
	"true": true, "false": true, "nil": true, "in": true, "not": true, "and": true, "or": true,
	"let": true, "if": true, "else": true, "matches": true, "contains": true,
	"startsWith": true, "endsWith": true,
}

var (
	instanceType = types.Map{"id": types.String, "name": types.String, "createdTime": types.TypeOf(time.Time{})}
	nowType      = types.TypeOf(func() time.Time { return time.Time{} })
)

// scope is what an expression may name: the variables that some path can
// have set before it, plus `error` inside onError and nothing but `input` in
// activity bindings. Scopes are immutable and shared; the variables are a
// bit set over the parser's registry of names, so that a workflow with many
// steps and variables costs a few words per scope, not a map per step.
type scope struct {
	reg     *registry
	bits    []uint64
	onError bool // `error` is defined
	binding bool // only `input` is defined
	// schedule: only `schedule` is defined (a schedule's input); binding
	// is set too, so no message speaks of variables.
	schedule bool
}

// registry numbers every variable name of one workflow.
type registry struct {
	index map[string]int
	names []string
}

func (r *registry) id(name string) int {
	if i, ok := r.index[name]; ok {
		return i
	}
	r.index[name] = len(r.names)
	r.names = append(r.names, name)
	return len(r.names) - 1
}

func (s *scope) has(i int) bool {
	w := i / 64
	return w < len(s.bits) && s.bits[w]&(1<<(i%64)) != 0
}

func (s *scope) with(names ...string) *scope {
	var ns *scope
	for _, n := range names {
		if n == "" {
			continue
		}
		i := s.reg.id(n)
		if s.has(i) || (ns != nil && ns.has(i)) {
			continue
		}
		if ns == nil {
			ns = &scope{reg: s.reg, onError: s.onError, binding: s.binding, bits: append([]uint64(nil), s.bits...)}
		}
		for len(ns.bits) <= i/64 {
			ns.bits = append(ns.bits, 0)
		}
		ns.bits[i/64] |= 1 << (i % 64)
	}
	if ns == nil {
		return s
	}
	return ns
}

func (s *scope) union(o *scope) *scope {
	fresh := false
	for w, b := range o.bits {
		if w >= len(s.bits) || b&^s.bits[w] != 0 {
			fresh = true
			break
		}
	}
	if !fresh {
		return s
	}
	ns := &scope{reg: s.reg, onError: s.onError, binding: s.binding, bits: make([]uint64, max(len(s.bits), len(o.bits)))}
	copy(ns.bits, s.bits)
	for w, b := range o.bits {
		ns.bits[w] |= b
	}
	return ns
}

// without is s less one variable.
func (s *scope) without(name string) *scope {
	i, ok := s.reg.index[name]
	if !ok || !s.has(i) {
		return s
	}
	ns := &scope{reg: s.reg, onError: s.onError, binding: s.binding, bits: append([]uint64(nil), s.bits...)}
	ns.bits[i/64] &^= 1 << (i % 64)
	return ns
}

// hasName reports whether the variable name is set in the scope.
func (s *scope) hasName(name string) bool {
	i, ok := s.reg.index[name]
	return ok && s.has(i)
}

// withError is the scope of an onError list: the same variables and `error`.
func (s *scope) withError() *scope {
	return &scope{reg: s.reg, bits: s.bits, onError: true}
}

func (s *scope) vars() []string {
	var out []string
	if s.reg == nil {
		return nil
	}
	for i, n := range s.reg.names {
		if s.has(i) {
			out = append(out, n)
		}
	}
	return out
}

func (s *scope) names() []string {
	if s.schedule {
		return []string{"schedule"}
	}
	out := []string{"input"}
	if s.binding {
		return out
	}
	out = append(out, "instance", "now")
	if s.onError {
		out = append(out, "error")
	}
	out = append(out, s.vars()...)
	sort.Strings(out)
	return out
}

// types is the compile-time environment: every name in scope, typed any
// except instance and now, so that expr reports any other name as unknown.
func (s *scope) types() types.Map {
	// budgetEnv is there for the calls boundAST writes; no expression can
	// name it.
	if s.schedule {
		return types.Map{"schedule": scheduleType, budgetEnv: types.Any}
	}
	env := types.Map{"input": types.Any, budgetEnv: types.Any}
	if s.binding {
		return env
	}
	env["instance"] = instanceType
	env["now"] = nowType
	if s.onError {
		env["error"] = types.Any
	}
	for _, n := range s.vars() {
		env[n] = types.Any
	}
	return env
}

// compiled is one expression: its text, where each of its runes stands in
// the source, and its program once compiled.
type compiled struct {
	src    string
	node   *yaml.Node // the scalar holding it
	off    int        // rune offset of src within node.Value
	sc     *scope
	asBool bool
	pos    []Pos // source position of each rune of src; filled at compile
	prog   *vm.Program
	// tree is the expression as parsed, for the type checks; dropped
	// once they ran.
	tree ast.Node
	// budgeted: prog calls bounded functions, which need a budget.
	budgeted bool
	loops    bool   // prog has a loop (map, filter, ...)
	use      envUse // what prog reads of its environment
}

// at returns the source position of rune offset i of the expression.
func (c *compiled) at(i int) Pos {
	if len(c.pos) == 0 {
		return nodePos(c.node)
	}
	if i < 0 {
		i = 0
	}
	if i >= len(c.pos) {
		last := c.pos[len(c.pos)-1]
		return Pos{last.Line, last.Col + 1}
	}
	return c.pos[i]
}

func (c *compiled) run(env *Env, binding bool) (any, error) {
	if c.prog == nil {
		return nil, &EvalError{Pos: c.at(0), Expr: c.src, Err: errors.New("expression was not compiled")}
	}
	var machine *vm.VM
	if c.loops {
		machine = &vm.VM{MemoryBudget: MaxExprMemory}
	} else {
		machine = vms.Get().(*vm.VM)
	}
	vars, s := env.envFor(c, binding)
	out, err := machine.Run(c.prog, vars)
	if s != nil {
		s.release()
	}
	if !c.loops {
		// Drop what the stack and variables point to, so that a pooled
		// VM holds no evaluation's values.
		clear(machine.Stack[:cap(machine.Stack)])
		clear(machine.Variables)
		vms.Put(machine)
	}
	if err != nil {
		pos := c.at(0)
		var fe *file.Error
		var fl *Failure
		if errors.As(err, &fl) { // fail(): the author's error, kept whole
			if errors.As(err, &fe) {
				pos = c.at(fe.From)
			}
			return nil, &EvalError{Pos: pos, Expr: c.src, Err: fl}
		}
		if errors.As(err, &fe) {
			pos = c.at(fe.From)
			err = errors.New(fe.Message)
			if fe.Message == "memory budget exceeded" {
				err = errMemory
			}
		}
		return nil, &EvalError{Pos: pos, Expr: c.src, Err: shorten(explain(err))}
	}
	return out, nil
}

// maxErrorText bounds the message of a failed evaluation: expr's quote the
// values involved (int(s) quotes s), and a 1 MiB message is no use to
// anyone reading an instance's output.
const maxErrorText = 1000

func shorten(err error) error {
	msg := err.Error()
	if len(msg) <= maxErrorText {
		return err
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return fmt.Errorf("%s… (%d bytes more)", msg[:cut], len(msg)-cut)
}

// vms reuses VMs between programs without loops: a VM allocates its
// stack and variables on its first run and keeps them; Run resets the
// rest, memory count included. A loop leaves its list and accumulator in
// scopes that the VM keeps out of reach, so a VM that runs one is not
// pooled.
var vms = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: MaxExprMemory} }}

// errMemory says what expr's terse "memory budget exceeded" means.
var errMemory = fmt.Errorf("memory budget exceeded: the expression builds more than %d elements of lists, maps and ranges", MaxExprMemory)

// exprEnv is the run-time environment of an expression; b is its budget,
// if it needs one.
func (e *Env) exprEnv(binding bool, b *budget) map[string]any {
	if e.Schedule != nil {
		m := map[string]any{"schedule": map[string]any{"id": e.Schedule.ID, "time": e.Schedule.Time}}
		if b != nil {
			m[budgetEnv] = b
		}
		return m
	}
	if binding {
		if b == nil {
			return map[string]any{"input": e.Input}
		}
		return map[string]any{"input": e.Input, budgetEnv: b}
	}
	m := make(map[string]any, len(e.Vars)+4)
	for k, v := range e.Vars {
		m[k] = v
	}
	m["input"] = e.Input
	m["instance"] = map[string]any{"id": e.Instance.ID, "name": e.Instance.Name, "createdTime": e.Instance.CreatedTime}
	now := e.Now
	m["now"] = func() time.Time { return now }
	if b != nil {
		m[budgetEnv] = b
	}
	return m
}

// Condition is a compiled boolean expression (`when:`, `if:`).
type Condition struct {
	Pos    Pos
	Source string
	c      *compiled
}

// Eval computes the condition in env. Errors are *EvalError.
func (c *Condition) Eval(env *Env) (bool, error) {
	out, err := c.c.run(env, false)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, &EvalError{Pos: c.Pos, Expr: c.Source, Err: fmt.Errorf("condition yielded %s, not a boolean", typeName(out))}
	}
	return b, nil
}

// valueKind says which of Value's fields hold it.
type valueKind uint8

const (
	valLiteral valueKind = iota // lit
	valExpr                     // expr: a string that is one `${ }`
	valInterp                   // parts: a string with `${ }` inside text
	valList                     // items
	valMap                      // keys, fields
)

// Value is a YAML value in which any string may hold `${ expr }`: a string
// that is exactly one `${ expr }` yields the expression's value (any JSON
// type); other strings with `${ }` inside interpolate to a string, where a
// string result is inserted as is and any other result as its JSON text
// (null for nil). `$${` writes a literal `${`. Values are compiled at Parse
// time.
type Value struct {
	Pos Pos

	kind   valueKind
	lit    any // the whole value when it holds no expression
	expr   *compiled
	parts  []part
	items  []*Value
	keys   []string
	fields []*Value
	static bool // no expression anywhere: lit is the value
	// binding is set on activity-binding values, which see only `input`.
	binding bool
}

type part struct {
	text string
	expr *compiled
}

// Eval computes the value in env. The result is JSON-compatible (nil, bool,
// float64, string, []any, map[string]any): integers become float64, times
// RFC 3339 strings, durations Go duration strings. Errors are *EvalError.
func (v *Value) Eval(env *Env) (any, error) {
	if v == nil {
		return nil, nil
	}
	if v.static {
		return copyJSON(v.lit), nil
	}
	switch v.kind {
	case valExpr:
		out, err := v.expr.run(env, v.binding)
		if err != nil {
			return nil, err
		}
		j, err := normalize(out, 0)
		if err != nil {
			return nil, &EvalError{Pos: v.expr.at(0), Expr: v.expr.src, Err: err}
		}
		return j, nil
	case valInterp:
		var sb strings.Builder
		for _, p := range v.parts {
			if p.expr == nil {
				sb.WriteString(p.text)
				continue
			}
			out, err := p.expr.run(env, v.binding)
			if err != nil {
				return nil, err
			}
			j, err := normalize(out, 0)
			if err != nil {
				return nil, &EvalError{Pos: p.expr.at(0), Expr: p.expr.src, Err: err}
			}
			if s, ok := j.(string); ok {
				sb.WriteString(s)
			} else {
				var buf [64]byte
				b, ok := appendJSON(buf[:0], j, 0)
				if !ok {
					b, _ = json.Marshal(j)
				}
				sb.Write(b)
			}
			if sb.Len() > MaxSourceBytes {
				return nil, &EvalError{Pos: v.Pos, Expr: p.expr.src, Err: errors.New("interpolated string is larger than 1 MiB")}
			}
		}
		return sb.String(), nil
	case valList:
		out := make([]any, len(v.items))
		for i, it := range v.items {
			x, err := it.Eval(env)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case valMap:
		out := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			x, err := v.fields[i].Eval(env)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	}
	return copyJSON(v.lit), nil
}

// Literal returns the value when it holds no expression at all.
func (v *Value) Literal() (any, bool) {
	if v == nil {
		return nil, true
	}
	if !v.static {
		return nil, false
	}
	return copyJSON(v.lit), true
}

// copyJSON deep-copies a JSON value so callers may not alter the model.
func copyJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = copyJSON(e)
		}
		return s
	}
	return v
}

// normalize turns an expression result into the JSON-compatible shape the
// rest of cairn stores: float64 numbers, string-keyed maps, RFC 3339 times.
func normalize(v any, depth int) (any, error) {
	var z normalizer
	return z.norm(v, depth)
}

// normalizer counts what a result holds, text included as often as it
// appears: an expression can build, within its budgets, a list holding
// itself a thousand times over (reduce(1..60, [#acc, #acc], 0) is 2^60
// elements in 120), or a million references to one 1 MiB string, whose
// copy or JSON text would be unbounded.
type normalizer struct {
	elems, text int64
}

func (z *normalizer) count(text int) error {
	z.elems++
	z.text += int64(text)
	if z.elems > MaxExprMemory {
		return fmt.Errorf("the value has more than %d elements", MaxExprMemory)
	}
	if z.text > MaxExprAlloc {
		return fmt.Errorf("the value holds more than %d MiB of text", MaxExprAlloc>>20)
	}
	return nil
}

func (z *normalizer) norm(v any, depth int) (any, error) {
	if depth > 256 {
		return nil, errors.New("value is nested too deeply")
	}
	if err := z.count(0); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case string:
		return v, z.count(len(x)) // v, not x: no new interface to allocate
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a JSON number", x)
		}
		return v, nil
	case int:
		return boxFloat(float64(x)), nil
	case int64:
		return boxFloat(float64(x)), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case time.Duration:
		return x.String(), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := z.norm(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if err := z.count(len(k)); err != nil {
				return nil, err
			}
			n, err := z.norm(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case json.Number:
		return x.Float64()
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), nil
	case reflect.Float32:
		return z.norm(rv.Float(), depth)
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			n, err := z.norm(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			n, err := z.norm(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[it.Key().String()] = n
		}
		return out, nil
	case reflect.Struct, reflect.Pointer:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("value of type %T is not JSON: %v", v, err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s is not a JSON value", typeName(v))
}

// smallFloats holds 0..255 as float64 interfaces: integer arithmetic
// yields an int that normalize turns into a float64, and boxing that
// would allocate for each result (Go boxes only small integers for free).
var smallFloats = func() (t [256]any) {
	for i := range t {
		t[i] = float64(i)
	}
	return t
}()

func boxFloat(f float64) any {
	if f >= 0 && f < float64(len(smallFloats)) && f == math.Trunc(f) {
		return smallFloats[int(f)]
	}
	return f
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case float64, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	if reflect.TypeOf(v).Kind() == reflect.Func {
		return "function"
	}
	return fmt.Sprintf("%T", v)
}

// newExpr records an expression for compilation in the second pass.
func (p *parser) newExpr(src string, node *yaml.Node, off int, sc *scope, asBool bool) *compiled {
	c := &compiled{src: src, node: node, off: off, sc: sc, asBool: asBool}
	if p.limit("expressions", len(p.exprs)+1, MaxExpressions, nodePos(node)) {
		p.exprs = append(p.exprs, c)
	}
	return c
}

// compileAll compiles every expression once all scopes and every assigned
// name are known, so messages can tell "never set" from "not set yet".
func (p *parser) compileAll() {
	positions := map[*yaml.Node][]Pos{}
	for _, c := range p.exprs {
		if p.full {
			return
		}
		all, ok := positions[c.node]
		if !ok {
			all = p.scalarPositions(c.node)
			positions[c.node] = all
		}
		n := len([]rune(c.src))
		if all != nil && c.off+n <= len(all) {
			c.pos = all[c.off : c.off+n]
		}
		p.compile(c)
	}
}

func (p *parser) compile(c *compiled) {
	cfg := conf.CreateNew()
	cfg.MaxNodes = MaxExprNodes
	cfg.Disabled["now"] = true
	tree, err := exprparser.ParseWithConfig(c.src, cfg)
	if err != nil {
		p.exprError(c, err, CodeExprSyntax)
		return
	}
	opts := []expr.Option{expr.Env(c.sc.types()), expr.MaxNodes(MaxExprNodes), expr.DisableBuiltin("now"), expr.Patch(modPatcher{})}
	if c.sc.binding {
		// fail() belongs to activity bindings: a workflow has its fail step.
		opts = append(opts, expr.Function("fail", cairnFail, failSignatures...))
	}
	if c.asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, bounds, err := compileSafely(c.src, opts)
	if err != nil {
		p.exprError(c, err, "")
		return
	}
	c.prog = prog
	c.tree = tree.Node
	c.budgeted, c.loops = bounds.used, bounds.loops
	c.use = usage(prog)
}

// compileSafely compiles as expr.Compile does, and bounds the program
// (boundAST) between optimizing and generating code. It turns a panic
// inside the expression compiler into an error: a definition must never
// crash the process that loads it.
func compileSafely(src string, opts []expr.Option) (prog *vm.Program, bounds bounder, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the expression compiler failed: %v", r)
		}
	}()
	config := conf.CreateNew()
	for _, op := range opts {
		op(config)
	}
	boundedFunctions(config)
	for name := range config.Builtins {
		if !costed[name] {
			config.Disabled[name] = true // it would run unbounded
		}
	}
	for name := range config.Disabled {
		delete(config.Builtins, name)
	}
	config.Check()
	tree, err := checker.ParseCheck(src, config)
	if err != nil {
		return nil, bounds, err
	}
	if config.Optimize {
		if err := optimizer.Optimize(&tree.Node, config); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, bounds, fe.Bind(tree.Source)
			}
			return nil, bounds, err
		}
	}
	bounds = boundAST(&tree.Node)
	prog, err = compiler.Compile(tree, config)
	return prog, bounds, err
}

// exprError reports a compile error at the offending token inside the
// scalar, with a suggestion for a misspelt name.
func (p *parser) exprError(c *compiled, err error, code string) {
	var fe *file.Error
	if !errors.As(err, &fe) {
		msg := err.Error()
		if strings.HasPrefix(msg, "expected bool") {
			p.errorf(c.at(leadingSpace(c.src)), CodeExprNotBool, "a condition must yield a boolean, but this expression yields %s", strings.TrimPrefix(msg, "expected bool, but got "))
			return
		}
		p.errorf(c.at(leadingSpace(c.src)), CodeExprType, "%s", msg)
		return
	}
	pos := c.at(fe.From)
	msg := fe.Message
	switch {
	case strings.Contains(msg, "exceeds maximum allowed nodes"):
		p.errorf(c.at(leadingSpace(c.src)), CodeExprTooComplex, "the expression is too large (more than %d nodes)", MaxExprNodes)
	case code == CodeExprSyntax:
		p.errorf(pos, CodeExprSyntax, "expression syntax: %s", msg)
	case strings.HasPrefix(msg, "unknown name "):
		name := strings.TrimPrefix(msg, "unknown name ")
		if name == "fail" && !c.sc.binding {
			p.errorf(pos, CodeExprFunction, "fail() is for activity bindings (expr, http); to fail the workflow use a fail step, e.g. - fail: {error: OutOfStock, message: ...}")
			return
		}
		rest := []rune(c.src)
		if end := fe.From + len([]rune(name)); end <= len(rest) && strings.HasPrefix(strings.TrimLeft(string(rest[end:]), " \t"), "(") {
			p.errorf(pos, CodeExprFunction, "unknown function '%s'%s", name, suggest(name, functionNames()))
			return
		}
		if name == "error" && !c.sc.binding {
			p.errorf(pos, CodeExprUnknown, "'error' is defined only inside onError and catch steps")
			return
		}
		if at, ok := p.assigned[name]; ok && !c.sc.binding {
			if !p.shared[name] {
				p.errorf(pos, CodeExprUnknown, "variable '%s' is set only inside a parallel branch or forEach body (at %s); other branches and the steps after do not see it, only the step's result", name, at)
				return
			}
			p.errorf(pos, CodeExprUnknown, "variable '%s' is not set on any path before this expression (it is set at %s)", name, at)
			return
		}
		if what, ok := p.locals[name]; ok && !c.sc.binding {
			p.errorf(pos, CodeExprUnknown, "'%s' is %s, visible only inside its steps", name, what)
			return
		}
		if c.sc.schedule {
			p.errorf(pos, CodeExprUnknown, "unknown name '%s': a schedule's input sees only 'schedule' ({id, time})%s", name, suggest(name, c.sc.names()))
			return
		}
		if c.sc.binding {
			p.errorf(pos, CodeExprUnknown, "unknown name '%s': an activity binding sees only 'input'%s", name, suggest(name, c.sc.names()))
			return
		}
		p.errorf(pos, CodeExprUnknown, "unknown name '%s'%s", name, suggest(name, c.sc.names()))
	case strings.HasPrefix(msg, "unknown field "):
		name := strings.TrimPrefix(msg, "unknown field ")
		p.errorf(pos, CodeExprField, "unknown field '%s'%s", name, suggest(name, []string{"id", "name", "createdTime"}))
	default:
		p.errorf(pos, CodeExprType, "%s", msg)
	}
}

func leadingSpace(s string) int {
	n := 0
	for _, r := range s {
		if r != ' ' && r != '\t' && r != '\n' {
			break
		}
		n++
	}
	return n
}

// functionNames lists what an expression may call.
func functionNames() []string {
	names := []string{"now"}
	for _, f := range builtin.Builtins {
		if f.Name != "now" && costed[f.Name] {
			names = append(names, f.Name)
		}
	}
	return names
}
