package dsl

import (
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Ranges of activity options: wide enough for real use, narrow enough that
// a typo (a timeout of 0, a backoff of 0.5, a million attempts) is caught.
const (
	maxActivityTimeout = 365 * 24 * time.Hour
	maxAttempts        = 100
	maxBackoff         = 100
	maxHTTPTimeout     = 24 * time.Hour
	maxConcurrency     = 10000
)

var (
	activityFields = []string{"timeout", "scheduleToStart", "heartbeat", "concurrency", "retry", "input", "output", "expr", "http", "go", "worker"}
	concFields     = []string{"limit", "scope"}
	retryFields    = []string{"maxAttempts", "firstInterval", "backoff", "maxInterval", "retryTimeout", "retryable"}
	httpFields     = []string{"url", "method", "query", "headers", "body", "errors", "timeout"}
	httpMethods    = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
)

func (p *parser) activities(n *yaml.Node) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'activities' must be a mapping from activity name to options, not %s", kindName(n))
		return
	}
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		if !nameRE.MatchString(k.Value) {
			p.errorf(nodePos(k), CodeInvalidName, "activity name '%s' must start with a letter and hold only letters, digits, '_', '.' and '-'", k.Value)
			continue
		}
		if _, dup := p.wf.Activities[k.Value]; dup {
			continue
		}
		if opts := p.activityOptions(k, v); opts != nil {
			p.wf.Activities[k.Value] = opts
		}
	}
}

func (p *parser) activityOptions(key, n *yaml.Node) *ActivityOptions {
	n = resolve(n)
	opts := &ActivityOptions{Pos: nodePos(key)}
	if isNull(n) {
		p.workerTimeout(key, opts)
		return opts
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "the options of activity '%s' must be a mapping, not %s", key.Value, kindName(n))
		return nil
	}
	var bindingKey *yaml.Node
	// sawUnknown: an unknown option may be a misspelt timeout, so the
	// missing timeout is not worth a warning too.
	sawUnknown := false
	setBinding := func(k *yaml.Node, b *Binding) {
		if b == nil {
			sawUnknown = true // a binding was meant, if not a worker
			return
		}
		if bindingKey != nil {
			p.errorf(nodePos(k), CodeBinding, "activity '%s' has two bindings, '%s' and '%s'; keep one", key.Value, bindingKey.Value, k.Value)
			return
		}
		bindingKey = k
		opts.Binding = b
	}
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "timeout":
			sawUnknown = true // reported if wrong; not missing
			if d, ok := p.staticDuration("timeout", v, true, maxActivityTimeout); ok {
				opts.Timeout = d
			}
		case "scheduleToStart":
			if d, ok := p.staticDuration("scheduleToStart", v, true, maxActivityTimeout); ok {
				opts.ScheduleToStart = d
			}
		case "heartbeat":
			if d, ok := p.staticDuration("heartbeat", v, true, maxActivityTimeout); ok {
				if d < time.Second {
					p.errorf(nodePos(v), CodeOptionRange, "'heartbeat' of %s is shorter than the least of 1s", d)
				} else {
					opts.Heartbeat = d
				}
			}
		case "concurrency":
			opts.Concurrency = p.concurrency(v)
		case "retry":
			opts.Retry = p.retry(v)
		case "input":
			opts.Input = p.compileSchema("activities."+key.Value+".input", k, v)
		case "output":
			opts.Output = p.compileSchema("activities."+key.Value+".output", k, v)
		case "expr":
			setBinding(k, p.exprBinding(v))
		case "http":
			setBinding(k, p.httpBinding(v))
		case "go", "worker":
			if b := resolve(v); b.Kind != yaml.ScalarNode || b.ShortTag() != "!!bool" || b.Value != "true" {
				sawUnknown = true
				p.errorf(nodePos(v), CodeBinding, "'%s' takes only the value true (remove it for the default binding)", k.Value)
				continue
			}
			kind := BindGo
			if k.Value == "worker" {
				kind = BindWorker
			}
			setBinding(k, &Binding{Kind: kind})
		default:
			sawUnknown = true
			p.errorf(nodePos(k), CodeUnknownField, "unknown activity option '%s'%s", k.Value, suggest(k.Value, activityFields))
		}
	}
	if !sawUnknown {
		p.workerTimeout(key, opts)
	}
	opts.setRetry()
	return opts
}

// concurrency reads `concurrency: N` (per process) or `concurrency:
// {limit: N, scope: process|global}`.
func (p *parser) concurrency(n *yaml.Node) *Concurrency {
	n = resolve(n)
	limit := func(v *yaml.Node) (int, bool) {
		f, ok := p.number("concurrency", v)
		if !ok {
			return 0, false
		}
		if f != math.Trunc(f) || f < 1 || f > maxConcurrency {
			p.errorf(nodePos(v), CodeOptionRange, "'concurrency' must be a whole number from 1 to %d, not %v", maxConcurrency, resolve(v).Value)
			return 0, false
		}
		return int(f), true
	}
	if n.Kind == yaml.ScalarNode {
		if l, ok := limit(n); ok {
			return &Concurrency{Limit: l}
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'concurrency' must be a number or a mapping like {limit: 2, scope: global}, not %s", kindName(n))
		return nil
	}
	c := &Concurrency{}
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "limit":
			l, ok := limit(v)
			if !ok {
				return nil
			}
			c.Limit = l
		case "scope":
			rv := resolve(v)
			switch {
			case rv.Kind == yaml.ScalarNode && rv.Value == "process":
			case rv.Kind == yaml.ScalarNode && rv.Value == "global":
				c.Global = true
			default:
				p.errorf(nodePos(v), CodeTypeMismatch, "'scope' must be process or global, not %q", rv.Value)
				return nil
			}
		default:
			p.errorf(nodePos(k), CodeUnknownField, "unknown concurrency option '%s'%s", k.Value, suggest(k.Value, concFields))
		}
	}
	if c.Limit == 0 {
		p.errorf(nodePos(n), CodeMissingField, "'concurrency' needs a 'limit'")
		return nil
	}
	return c
}

// workerTimeout warns of an external-worker activity without a timeout:
// if no worker ever takes its task, the instance waits forever.
func (p *parser) workerTimeout(key *yaml.Node, opts *ActivityOptions) {
	if opts.Timeout > 0 || opts.ScheduleToStart > 0 || (opts.Binding != nil && opts.Binding.Kind != BindWorker) {
		return
	}
	p.warnf(nodePos(key), CodeNoTimeout, "activity '%s' runs on an external worker but has no 'timeout': if no worker takes its task, the instance waits forever; add one, e.g. timeout: 5m", key.Value)
}

// staticDuration reads a literal duration: activity options are fixed when
// the definition loads, so no `${ }` here.
func (p *parser) staticDuration(field string, n *yaml.Node, positive bool, max time.Duration) (time.Duration, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) || strings.Contains(n.Value, "${") {
		p.errorf(nodePos(n), CodeDuration, "'%s' must be a literal duration like 30s or a number of seconds, not %s", field, kindName(n))
		return 0, false
	}
	d, err := ToDuration(p.scalarJSON(n))
	if err != nil {
		p.errorf(nodePos(n), CodeDuration, "'%s': %v", field, err)
		return 0, false
	}
	if positive && d <= 0 {
		p.errorf(nodePos(n), CodeOptionRange, "'%s' must be longer than 0 (leave it out for none)", field)
		return 0, false
	}
	if d > max {
		p.errorf(nodePos(n), CodeOptionRange, "'%s' of %s is longer than the limit of %s", field, d, max)
		return 0, false
	}
	return d, true
}

// number reads a literal number.
func (p *parser) number(field string, n *yaml.Node) (float64, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		p.errorf(nodePos(n), CodeTypeMismatch, "'%s' must be a number, not %s", field, kindName(n))
		return 0, false
	}
	f, ok := p.scalarJSON(n).(float64)
	return f, ok
}

func (p *parser) retry(n *yaml.Node) *RetryPolicy {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'retry' must be a mapping like {maxAttempts: 3, firstInterval: 1s}, not %s", kindName(n))
		return nil
	}
	r := &RetryPolicy{MaxAttempts: 3, FirstInterval: time.Second, Backoff: 2}
	var maxIntervalNode *yaml.Node
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "maxAttempts":
			if f, ok := p.number("maxAttempts", v); ok {
				if f != math.Trunc(f) || f < 1 || f > maxAttempts {
					p.errorf(nodePos(v), CodeOptionRange, "'maxAttempts' must be a whole number from 1 to %d, not %v", maxAttempts, resolve(v).Value)
				} else {
					r.MaxAttempts = int(f)
				}
			}
		case "firstInterval":
			if d, ok := p.staticDuration("firstInterval", v, true, maxActivityTimeout); ok {
				r.FirstInterval = d
			}
		case "backoff":
			if f, ok := p.number("backoff", v); ok {
				if f < 1 || f > maxBackoff {
					p.errorf(nodePos(v), CodeOptionRange, "'backoff' must be from 1 to %d, not %v", maxBackoff, resolve(v).Value)
				} else {
					r.Backoff = f
				}
			}
		case "maxInterval":
			if d, ok := p.staticDuration("maxInterval", v, true, maxActivityTimeout); ok {
				r.MaxInterval = d
				maxIntervalNode = v
			}
		case "retryTimeout":
			if d, ok := p.staticDuration("retryTimeout", v, true, maxActivityTimeout); ok {
				r.RetryTimeout = d
			}
		case "retryable":
			r.Retryable = p.retryableTypes(v)
		default:
			p.errorf(nodePos(k), CodeUnknownField, "unknown retry option '%s'%s", k.Value, suggest(k.Value, retryFields))
		}
	}
	if maxIntervalNode != nil && r.MaxInterval < r.FirstInterval {
		p.errorf(nodePos(maxIntervalNode), CodeOptionRange, "'maxInterval' (%s) is shorter than 'firstInterval' (%s)", r.MaxInterval, r.FirstInterval)
	}
	return r
}

func (p *parser) exprBinding(n *yaml.Node) *Binding {
	rn := resolve(n)
	if rn.Kind != yaml.ScalarNode || isNull(rn) {
		p.errorf(nodePos(n), CodeBinding, "'expr' must be an expression over 'input', not %s", kindName(n))
		return nil
	}
	sc := &scope{binding: true}
	src, off := rn.Value, 0
	// Accept the expression bare or wrapped in ${ }.
	if segs, terr := splitTemplate(rn.Value); terr == nil {
		if i := wholeExpr(segs); i >= 0 {
			src, off = segs[i].text, segs[i].off
		}
	}
	c := p.newExpr(src, rn, off, sc, false)
	return &Binding{Kind: BindExpr, Expr: &Value{Pos: nodePos(rn), kind: valExpr, expr: c, binding: true}}
}

func (p *parser) httpBinding(n *yaml.Node) *Binding {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeBinding, "'http' must be a mapping with at least url, not %s", kindName(n))
		return nil
	}
	b := &Binding{Kind: BindHTTP, Method: "POST"}
	hasURL := false
	var bodyKey *yaml.Node
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "url":
			hasURL = true
			rv := resolve(v)
			u, parts, ok := p.urlTemplate(rv)
			if !ok {
				continue
			}
			b.URL, b.url = u, parts
		case "query":
			b.Query = p.queryParams(v)
		case "body":
			bodyKey = k
			b.Body = p.value(v, &scope{binding: true})
		case "errors":
			b.Errors = p.errorMap(v)
		case "method":
			rv := resolve(v)
			m := rv.Value
			ok := false
			for _, x := range httpMethods {
				ok = ok || x == m
			}
			if !isString(rv) || !ok {
				p.errorf(nodePos(v), CodeBinding, "'method' must be one of %s (in capitals)", strings.Join(httpMethods, ", "))
				continue
			}
			b.Method = m
		case "headers":
			rv := resolve(v)
			if rv.Kind != yaml.MappingNode {
				p.errorf(nodePos(v), CodeTypeMismatch, "'headers' must be a mapping of header name to value, not %s", kindName(v))
				continue
			}
			b.Headers = map[string]*Value{}
			for _, hv := range pairs(rv) {
				b.Headers[hv[0].Value] = p.value(hv[1], &scope{binding: true})
			}
		case "timeout":
			if d, ok := p.staticDuration("timeout", v, true, maxHTTPTimeout); ok {
				b.Timeout = d
			}
		default:
			p.errorf(nodePos(k), CodeUnknownField, "unknown http option '%s'%s", k.Value, suggest(k.Value, httpFields))
		}
	}
	if !hasURL {
		p.errorf(nodePos(n), CodeBinding, "'http' needs a 'url'")
		return nil
	}
	p.httpChecks(b, bodyKey)
	return b
}

// events reads `events:`, a mapping from event name to the JSON Schema of
// its payload.
func (p *parser) events(n *yaml.Node) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'events' must be a mapping from event name to the JSON Schema of its payload, not %s", kindName(n))
		return
	}
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		if !nameRE.MatchString(k.Value) {
			p.errorf(nodePos(k), CodeInvalidName, "event name '%s' must start with a letter and hold only letters, digits, '_', '.' and '-'", k.Value)
			continue
		}
		if _, dup := p.wf.Events[k.Value]; dup {
			continue
		}
		if s := p.compileSchema("events."+k.Value, k, v); s != nil {
			p.wf.Events[k.Value] = s
		}
	}
}

// templateStart is the byte offset of the first `${` of s that is not the
// escape `$${`, or -1.
func templateStart(s string) int {
	for i := 0; i+1 < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			return i
		}
	}
	return -1
}
