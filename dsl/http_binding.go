package dsl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"gopkg.in/yaml.v3"
)

// This file holds the templates of an http binding (a url with ${ } parts,
// query:, body:), its errors: map and the retry decision of typed
// failures, with their lint checks.

// QueryParam is one `query:` parameter of an http binding.
type QueryParam struct {
	Name  string
	Value *Value
}

// urlPart is a piece of an http binding's url: literal text, or an
// expression whose value is escaped for where it stands (path or query).
type urlPart struct {
	text  string
	value *Value
	query bool // after the '?': query-escaped, else path-escaped
}

// The statuses `errors:` may map: the client and server errors.
const (
	minErrorStatus = 400
	maxErrorStatus = 599
)

// urlTemplate reads an http binding's url: an absolute http(s) URL whose
// path and query may hold `${ }` parts; its scheme and host are fixed.
// It returns the url to send when it holds no expression (its `$${`
// escapes undone), else the parts, and whether the url is usable.
func (p *parser) urlTemplate(n *yaml.Node) (string, []urlPart, bool) {
	if !isString(n) {
		p.errorf(nodePos(n), CodeBinding, "'url' must be an absolute http or https URL")
		return "", nil, false
	}
	segs, terr := splitTemplate(n.Value)
	if terr != nil {
		p.errorf(p.runePos(n, terr.off), terr.code, "%s", terr.msg)
		return "", nil, false
	}
	var parts []urlPart
	var shape strings.Builder // the url with each expression as "x", to check its form
	inQuery, hasExpr := false, false
	for _, s := range segs {
		if !s.isExpr {
			parts = append(parts, urlPart{text: s.text})
			shape.WriteString(s.text)
			inQuery = inQuery || strings.Contains(s.text, "?")
			if strings.Contains(s.text, "#") {
				inQuery = false
			}
			continue
		}
		sofar := shape.String()
		auth := strings.Index(sofar, "://")
		if auth < 0 || !strings.ContainsAny(sofar[auth+3:], "/?") {
			p.errorf(p.runePos(n, s.start), CodeNotTemplate, "the scheme and host of 'url' are fixed: '${ }' may stand only in its path or query, after the host (as in https://api.example.com/orders/${ input.id })")
			return "", nil, false
		}
		if strings.Contains(sofar, "#") {
			p.errorf(p.runePos(n, s.start), CodeNotTemplate, "'${ }' in the fragment of 'url' (after '#') would never be sent; put the value in the path or query")
			return "", nil, false
		}
		hasExpr = true
		c := p.newExpr(s.text, n, s.off, &scope{binding: true}, false)
		parts = append(parts, urlPart{value: &Value{Pos: p.runePos(n, s.start), kind: valExpr, expr: c, binding: true}, query: inQuery})
		shape.WriteString("x")
	}
	u, err := url.Parse(shape.String())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.errorf(nodePos(n), CodeBinding, "'url' must be an absolute http or https URL")
		return "", nil, false
	}
	if !hasExpr {
		return shape.String(), nil, true
	}
	return n.Value, parts, true
}

// queryParams reads `query:`, a mapping of parameter name to value
// template, kept in the order written.
func (p *parser) queryParams(n *yaml.Node) []QueryParam {
	rn := resolve(n)
	if rn.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'query' must be a mapping of parameter name to value, not %s", kindName(n))
		return nil
	}
	var out []QueryParam
	for _, kv := range pairs(rn) {
		if kv[0].Value == "" {
			p.errorf(nodePos(kv[0]), CodeBinding, "a query parameter needs a name")
			continue
		}
		out = append(out, QueryParam{Name: kv[0].Value, Value: p.value(kv[1], &scope{binding: true})})
	}
	return out
}

// errorMap reads `errors:`, a mapping of response status (400-599) to the
// error type the failure takes.
func (p *parser) errorMap(n *yaml.Node) map[int]string {
	rn := resolve(n)
	if rn.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'errors' must be a mapping of response status to error type, like {402: CardDeclined}, not %s", kindName(n))
		return nil
	}
	out := map[int]string{}
	for _, kv := range pairs(rn) {
		k, v := resolve(kv[0]), resolve(kv[1])
		code, err := strconv.Atoi(k.Value)
		if err != nil || code < minErrorStatus || code > maxErrorStatus {
			p.errorf(nodePos(k), CodeOptionRange, "'errors' maps response statuses from %d to %d to error types; '%s' is not one", minErrorStatus, maxErrorStatus, k.Value)
			continue
		}
		if !isString(v) || !nameRE.MatchString(v.Value) {
			p.errorf(nodePos(v), CodeInvalidName, "the error type of status %d must be a name such as CardDeclined (a letter, then letters, digits, '_', '.' or '-'), not %s", code, quoted(v))
			continue
		}
		out[code] = v.Value
	}
	return out
}

// retryableTypes reads a retry policy's `retryable:`, a list of error
// types.
func (p *parser) retryableTypes(n *yaml.Node) []string {
	rn := resolve(n)
	if rn.Kind != yaml.SequenceNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'retryable' must be a list of error types, like [Conflict], not %s", kindName(n))
		return nil
	}
	out := []string{}
	for _, it := range rn.Content {
		r := resolve(it)
		if !isString(r) || !nameRE.MatchString(r.Value) {
			p.errorf(nodePos(it), CodeInvalidName, "'retryable' lists error types, names such as Conflict, not %s", quoted(r))
			continue
		}
		out = append(out, r.Value)
	}
	return out
}

func quoted(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return fmt.Sprintf("'%s'", n.Value)
	}
	return kindName(n)
}

// builtinErrorTypes are the types cairn's own failures take; `retryable`
// does not change how they are retried.
var builtinErrorTypes = map[string]bool{
	"ActivityFailed": true, "ActivityTimeout": true, "ActivityPanic": true, "HTTPError": true,
	"NetworkError": true, "ExpressionError": true, "InvalidInput": true, "InvalidResult": true,
	"HandlerNotFound": true, "DefinitionError": true,
}

// Retries reports whether a typed failure of type errType (fail(), or an
// http status that errors: maps) is retried by the activity's policy: only
// when its retry.retryable lists the type.
func (b *Binding) Retries(errType string) bool {
	return b != nil && b.retry[errType]
}

// ErrorType is the error type errors: gives a response status, if any.
func (b *Binding) ErrorType(status int) (string, bool) {
	if b == nil {
		return "", false
	}
	t, ok := b.Errors[status]
	return t, ok
}

// HasURLTemplate reports whether the url holds `${ }` parts.
func (b *Binding) HasURLTemplate() bool { return b != nil && b.url != nil }

// RequestURL is the url of one call: each `${ }` part of the url
// path-escaped (query-escaped after the '?'), then the query: parameters,
// query-escaped, in the order written. A null parameter is left out and a
// list repeats the parameter once per element. A value that cannot stand
// in a URL is an *EvalError naming its expression.
func (b *Binding) RequestURL(env *Env) (string, error) {
	var sb strings.Builder
	if b.url == nil {
		sb.WriteString(b.URL)
	}
	for _, part := range b.url {
		if part.value == nil {
			sb.WriteString(part.text)
			continue
		}
		v, err := part.value.Eval(env)
		if err != nil {
			return "", err
		}
		s, ok := urlText(v)
		if !ok {
			return "", part.value.evalError(fmt.Errorf("a url part must be a string, a number or a boolean, not %s", typeName(v)))
		}
		if part.query {
			sb.WriteString(url.QueryEscape(s))
		} else {
			sb.WriteString(url.PathEscape(s))
		}
	}
	if len(b.Query) == 0 {
		return sb.String(), nil
	}
	u := sb.String()
	hash := ""
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u, hash = u[:i], u[i:]
	}
	sep := "?"
	switch {
	case strings.HasSuffix(u, "?") || strings.HasSuffix(u, "&"):
		sep = ""
	case strings.Contains(u, "?"):
		sep = "&"
	}
	sb.Reset()
	sb.WriteString(u)
	for _, q := range b.Query {
		v, err := q.Value.Eval(env)
		if err != nil {
			return "", err
		}
		vals, ok := v.([]any)
		if !ok {
			vals = []any{v}
		}
		for _, x := range vals {
			if x == nil {
				continue
			}
			s, ok := urlText(x)
			if !ok {
				return "", q.Value.evalError(fmt.Errorf("query parameter '%s' must be a string, a number, a boolean, null (left out) or a list of those, not %s", q.Name, typeName(x)))
			}
			sb.WriteString(sep)
			sb.WriteString(url.QueryEscape(q.Name))
			sb.WriteByte('=')
			sb.WriteString(url.QueryEscape(s))
			sep = "&"
		}
	}
	sb.WriteString(hash)
	return sb.String(), nil
}

// urlText is the text of a scalar in a URL: a string as it is, a number
// or boolean as its JSON text.
func urlText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool, float64:
		b, err := json.Marshal(x)
		return string(b), err == nil
	}
	return "", false
}

// evalError is a run-time error of v that names its expression and where
// it stands.
func (v *Value) evalError(err error) *EvalError {
	return &EvalError{Pos: v.exprPos(), Expr: v.Source(), Err: err}
}

// exprPos is where v's expression starts, or v's position.
func (v *Value) exprPos() Pos {
	if v.kind == valExpr && v.expr != nil {
		return v.expr.at(leadingSpace(v.expr.src))
	}
	return v.Pos
}

// EvalError is a run-time error of a value that evaluated but whose result
// does not fit where it stands (a duration that is not one, a url part
// that is an object): it names the value's source text and its position,
// as the errors of Eval do.
func (v *Value) EvalError(err error) error {
	if v == nil {
		return err
	}
	var ee *EvalError
	if errors.As(err, &ee) {
		return err
	}
	return v.evalError(err)
}

// Source is the value's text as written: the expression of a `${ }`, the
// whole string of one with `${ }` inside text, or the JSON text of a
// literal.
func (v *Value) Source() string {
	switch {
	case v == nil:
		return ""
	case v.kind == valExpr && v.expr != nil:
		return strings.TrimSpace(v.expr.src)
	case v.kind == valInterp:
		for _, pt := range v.parts {
			if pt.expr != nil && pt.expr.node != nil {
				return pt.expr.node.Value
			}
		}
	}
	if b, err := json.Marshal(v.lit); err == nil && v.static {
		return string(b)
	}
	return ""
}

// httpChecks are the lint checks of an http binding after parsing: a body
// that its method would not send.
func (p *parser) httpChecks(b *Binding, bodyKey *yaml.Node) {
	if bodyKey != nil && (b.Method == "GET" || b.Method == "DELETE") {
		p.errorf(nodePos(bodyKey), CodeBinding, "a %s sends no body, so 'body' would be ignored; put its values in 'query'", b.Method)
	}
}

// bindingTemplates types the templates of an activity's binding (url
// parts, query, body) in env and checks what can be seen of them: a url
// part or query value that cannot be text, fail() calls, and a
// retry.retryable entry the binding never fails with.
func (f *typeFlow) bindingTemplates(name string, a *ActivityOptions, env *tenv) {
	b := a.Binding
	if !f.loud() {
		return
	}
	var exprs []*compiled
	switch b.Kind {
	case BindExpr:
		if b.Expr != nil {
			exprs = append(exprs, b.Expr.expr)
		}
	case BindHTTP:
		for _, part := range b.url {
			if part.value == nil {
				continue
			}
			t := f.value(part.value, env)
			if onlyOf(t, tkList, tkObject, tkNull) {
				f.p.errorf(part.value.exprPos(), CodeExprType, "a url part must be a string, a number or a boolean, but this is %s", t.describe())
			}
			exprs = append(exprs, part.value.expr)
		}
		for _, q := range b.Query {
			t := f.value(q.Value, env)
			if onlyOf(t, tkObject) {
				f.p.errorf(q.Value.exprPos(), CodeExprType, "query parameter '%s' must be a string, a number, a boolean, null (left out) or a list of those, but this is %s", q.Name, t.describe())
			}
			exprs = append(exprs, q.Value.exprs()...)
		}
		if b.Body != nil {
			f.value(b.Body, env)
			exprs = append(exprs, b.Body.exprs()...)
		}
		for _, h := range b.Headers {
			exprs = append(exprs, h.exprs()...)
		}
	}
	typed, allLiteral := map[string]bool{}, true
	for _, c := range exprs {
		if !f.p.failCalls(c, typed) {
			allLiteral = false
		}
	}
	for _, t := range b.Errors {
		typed[t] = true
	}
	if a.Retry == nil {
		return
	}
	known := sortedKeys(typed)
	for _, t := range a.Retry.Retryable {
		switch {
		case t == "InvalidResult" && a.Output != nil:
			// A result that breaks output: is retried when listed.
		case builtinErrorTypes[t]:
			f.p.warnf(a.Pos, CodeRetryable, "activity '%s': 'retryable' lists %s, which is cairn's own error type and keeps its own retry rule; 'retryable' is for the types of fail() and errors:", name, t)
		case b.Kind == BindWorker || b.Kind == BindGo || typed[t] || !allLiteral:
		case len(known) == 0:
			f.p.warnf(a.Pos, CodeRetryable, "activity '%s': 'retryable' lists %s, but its binding never fails with a type of its own (use fail() in an expr, or errors: in http)", name, t)
		default:
			f.p.warnf(a.Pos, CodeRetryable, "activity '%s': 'retryable' lists %s, but its binding fails only with %s%s", name, t, strings.Join(known, ", "), suggest(t, known))
		}
	}
}

// CodeRetryable: a retry.retryable entry that cannot apply (warning).
const CodeRetryable = "retryable-unused"

// onlyOf reports whether every member of t is of one of kinds.
func onlyOf(t *typ, kinds ...typeKind) bool {
	if t.isAny() {
		return false
	}
	for _, m := range t.alts() {
		ok := false
		for _, k := range kinds {
			ok = ok || m.kind == k
		}
		if !ok {
			return false
		}
	}
	return true
}

// exprs lists the compiled expressions of a value.
func (v *Value) exprs() []*compiled {
	if v == nil || v.static {
		return nil
	}
	switch v.kind {
	case valExpr:
		return []*compiled{v.expr}
	case valInterp:
		var out []*compiled
		for _, pt := range v.parts {
			if pt.expr != nil {
				out = append(out, pt.expr)
			}
		}
		return out
	}
	var out []*compiled
	for _, it := range v.items {
		out = append(out, it.exprs()...)
	}
	for _, f := range v.fields {
		out = append(out, f.exprs()...)
	}
	return out
}

// failCalls checks the calls of fail in c (two or three arguments, a
// literal error type that is a name) and records their literal types in
// typed; it reports false when some call's type is computed.
func (p *parser) failCalls(c *compiled, typed map[string]bool) bool {
	if c == nil || c.tree == nil {
		return true
	}
	v := &failVisitor{p: p, c: c, typed: typed, literal: true}
	ast.Walk(&c.tree, v)
	return v.literal
}

type failVisitor struct {
	p       *parser
	c       *compiled
	typed   map[string]bool
	literal bool
}

func (v *failVisitor) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	if id, ok := call.Callee.(*ast.IdentifierNode); !ok || id.Value != "fail" {
		return
	}
	if len(call.Arguments) > 3 {
		v.p.errorf(v.c.at(call.Arguments[3].Location().From), CodeExprType, "fail takes an error type, a message and optional data: %d arguments is too many", len(call.Arguments))
		return
	}
	if len(call.Arguments) == 0 {
		return // expr's checker reported it
	}
	s, ok := call.Arguments[0].(*ast.StringNode)
	if !ok {
		v.literal = false
		return
	}
	if !nameRE.MatchString(s.Value) {
		v.p.errorf(v.c.at(s.Location().From), CodeInvalidName, "the error type of fail must be a name such as CardDeclined (a letter, then letters, digits, '_', '.' or '-'), not %q", s.Value)
		return
	}
	v.typed[s.Value] = true
}

// setRetry hands the activity's retry.retryable to its binding, which is
// all the activity runtime sees of the activity.
func (o *ActivityOptions) setRetry() {
	if o.Binding == nil || o.Retry == nil {
		return
	}
	o.Binding.retry = make(map[string]bool, len(o.Retry.Retryable))
	for _, t := range o.Retry.Retryable {
		o.Binding.retry[t] = true
	}
}
