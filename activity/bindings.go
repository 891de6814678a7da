package activity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

const (
	// MaxResultBytes bounds an activity's result JSON (1 MiB, as every
	// payload cairn accepts); a larger one is a non-retryable
	// InvalidResult failure.
	MaxResultBytes = 1 << 20
	// DefaultHTTPTimeout bounds an http binding's request when neither the
	// binding nor the activity sets a timeout.
	DefaultHTTPTimeout = time.Minute
	// bodyExcerptBytes is how much of a failed answer's body an HTTPError
	// message quotes.
	bodyExcerptBytes = 512
)

// runBinding runs one task by its binding: b is nil when the workflow
// gives none (then a registered Go handler runs it).
func (r *Runtime) runBinding(ctx context.Context, b *dsl.Binding, t Task) (json.RawMessage, error) {
	kind := dsl.BindGo
	if b != nil && b.Kind != dsl.BindWorker {
		kind = b.Kind
	}
	switch kind {
	case dsl.BindHTTP:
		raw, err := r.runHTTP(ctx, b, t)
		if err != nil {
			return nil, err
		}
		return checkResult(raw)
	case dsl.BindExpr:
		return runExpr(b, t)
	}
	h, ok := r.reg.lookup(t.Activity)
	if !ok {
		return nil, &Error{Type: ErrTypeNotRegistered, Message: fmt.Sprintf("no Go handler for activity %s is registered in this process", t.Activity)}
	}
	v, err := h(ctx, t)
	if err != nil {
		return nil, err
	}
	return marshalResult(v)
}

// marshalResult encodes a Go handler's result.
func marshalResult(v any) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Type: ErrTypeInvalidResult, Message: fmt.Sprintf("the result is not JSON: %v", err), NonRetryable: true, Cause: err}
	}
	return checkResult(raw)
}

// MaxResultDepth bounds how deep a result's JSON may nest, as the API
// bounds every JSON body: the result travels inside the work item that
// completes the task, and a work item nested deeper than encoding/json
// reads (10,000 levels) would be dropped as corrupt, leaving its instance
// waiting for ever.
const MaxResultDepth = 256

// checkResult holds a result to MaxResultBytes and MaxResultDepth, and to
// values the engine can read (no number beyond a 64-bit float).
func checkResult(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) > MaxResultBytes {
		return nil, &Error{Type: ErrTypeInvalidResult, Message: fmt.Sprintf("the result is %d bytes of JSON, more than the limit of %d", len(raw), MaxResultBytes), NonRetryable: true}
	}
	if resultDepth(raw) > MaxResultDepth {
		return nil, &Error{Type: ErrTypeInvalidResult, Message: fmt.Sprintf("the result is nested more than %d levels deep", MaxResultDepth), NonRetryable: true}
	}
	if readable(raw) {
		return raw, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, &Error{Type: ErrTypeInvalidResult, Message: fmt.Sprintf("the result cannot be read: %v", err), NonRetryable: true, Cause: err}
	}
	return raw, nil
}

// readable reports whether json.Unmarshal would read raw into an any
// without an error, without building the value: raw is valid JSON (the
// scanner Unmarshal checks with first) and each number parses as a
// float64 (what Unmarshal's conversion fails on). False sends the caller
// to Unmarshal itself, for its error.
func readable(raw []byte) bool {
	if !json.Valid(raw) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			for i++; raw[i] != '"'; i++ { // valid JSON: the string ends
				if raw[i] == '\\' {
					i++
				}
			}
		case c == '-' || '0' <= c && c <= '9':
			j := i + 1
			for j < len(raw) && numberByte(raw[j]) {
				j++
			}
			if _, err := strconv.ParseFloat(string(raw[i:j]), 64); err != nil {
				return false
			}
			i = j - 1
		}
	}
	return true
}

// numberByte: c may stand in a JSON number after its first byte.
func numberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// resultDepth is the deepest nesting of arrays and objects in raw.
func resultDepth(raw []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// input decodes the task's input for expressions.
func input(t Task) any {
	if v, ok := plainInput(t.Input); ok {
		return v
	}
	var v any
	_ = json.Unmarshal(t.Input, &v) // the interpreter wrote it; null if not
	return v
}

// plainInput is json.Unmarshal's value for the inputs it reads at a
// glance: true, false, null and a string with nothing to unescape or
// replace (no backslash, no control character, valid UTF-8), as a start's
// user id is; false for the rest.
func plainInput(raw []byte) (any, bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return nil, true
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c < ' ' || c == '"' || c == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(in) {
		return nil, false
	}
	return string(in), true
}

// RunExpr computes an expr binding for a scheduled task exactly as the
// runtime does, for callers without one (the offline simulator): the
// result, or the failure the runtime would record.
func RunExpr(b *dsl.Binding, s *interpreter.ScheduleTask) (json.RawMessage, *interpreter.ErrorInfo) {
	t := taskOf(s)
	raw, err := runExpr(b, t)
	if err != nil {
		info := errorInfo(err, t.Attempt)
		return nil, &info
	}
	return raw, nil
}

// taskOf is what a handler sees of a scheduled task.
func taskOf(s *interpreter.ScheduleTask) Task {
	t := Task{
		ID: s.TaskID, Activity: s.Activity, Input: s.Input, Attempt: s.Attempt,
		InstanceID: string(s.Instance), Workflow: s.Workflow, StepID: string(s.StepID),
	}
	if len(t.Input) == 0 {
		t.Input = json.RawMessage("null")
	}
	return t
}

// runExpr computes an expr binding: a pure expression over the input. Its
// errors are final (the same input fails the same way every time), but
// for a fail() whose type the activity's retry policy lists.
func runExpr(b *dsl.Binding, t Task) (json.RawMessage, error) {
	v, err := b.Expr.Eval(&dsl.Env{Input: input(t)})
	if err != nil {
		return nil, bindingError(b, t, "", err)
	}
	return marshalResult(v)
}

// bindingError is the failure of an expression of binding b (what says
// which, "" for an expr binding's): the author's typed failure for a
// fail(), retried only when the retry policy lists its type, else a final
// ExpressionError that names the expression and where it stands.
func bindingError(b *dsl.Binding, t Task, what string, err error) error {
	var f *dsl.Failure
	if errors.As(err, &f) {
		return &Error{Type: f.Type, Message: f.Message, Data: f.Data, NonRetryable: !b.Retries(f.Type), Cause: err}
	}
	if what != "" {
		what += ": "
	}
	return &Error{Type: ErrTypeExpression, Message: fmt.Sprintf("activity %s: %s%v", t.Activity, what, err), NonRetryable: true, Cause: err}
}

// runHTTP calls an http binding: the url with its ${ } parts and query,
// the body (by default the input; none for GET and DELETE) as JSON, the
// JSON answer the result. A status that the binding's errors: maps fails
// with that type, retried only when the retry policy lists it.
func (r *Runtime) runHTTP(ctx context.Context, b *dsl.Binding, t Task) (json.RawMessage, error) {
	timeout := b.Timeout
	if _, has := ctx.Deadline(); timeout == 0 && !has {
		timeout = DefaultHTTPTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	method := b.Method
	if method == "" {
		method = http.MethodPost
	}
	// The url as written, not as sent: its values may be personal data,
	// and its query and user info secrets.
	where := method + " " + redact(b.URL)
	var env *dsl.Env
	lazyEnv := func() *dsl.Env {
		if env == nil {
			env = &dsl.Env{Input: input(t)}
		}
		return env
	}
	target := b.URL
	if b.HasURLTemplate() || len(b.Query) > 0 {
		u, err := b.RequestURL(lazyEnv())
		if err != nil {
			return nil, bindingError(b, t, "url", err)
		}
		target = u
	}
	var body io.Reader
	if method != http.MethodGet && method != http.MethodDelete {
		raw := []byte(t.Input)
		if b.Body != nil {
			v, err := b.Body.Eval(lazyEnv())
			if err != nil {
				return nil, bindingError(b, t, "body", err)
			}
			if raw, err = json.Marshal(v); err != nil {
				return nil, &Error{Type: ErrTypeExpression, Message: fmt.Sprintf("activity %s: body: %v", t.Activity, err), NonRetryable: true, Cause: err}
			}
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &Error{Type: ErrTypeHTTP, Message: fmt.Sprintf("%s: %v", where, err), NonRetryable: true, Cause: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "cairn-activity")
	req.Header.Set("Cairn-Instance-Id", t.InstanceID)
	req.Header.Set("Cairn-Task-Id", t.ID)
	req.Header.Set("Cairn-Activity", t.Activity)
	req.Header.Set("Cairn-Attempt", strconv.Itoa(t.Attempt))
	for name, v := range b.Headers {
		val, err := v.Eval(lazyEnv())
		if err != nil {
			return nil, bindingError(b, t, "header "+name, err)
		}
		s, ok := val.(string)
		if !ok {
			j, _ := json.Marshal(val)
			s = string(j)
		}
		req.Header.Set(name, s)
	}

	resp, err := r.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, query and all
		}
		if ctx.Err() != nil {
			return nil, &Error{Type: ErrTypeTimeout, Message: fmt.Sprintf("%s: no answer in time: %v", where, err), Cause: err}
		}
		return nil, &Error{Type: ErrTypeNetwork, Message: fmt.Sprintf("%s: %v", where, err), Cause: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResultBytes+1))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("%s answered %s: %s", where, resp.Status, excerpt(data))
		if typ, ok := b.ErrorType(resp.StatusCode); ok {
			return nil, &Error{Type: typ, Message: msg, NonRetryable: !b.Retries(typ), Data: answerData(resp.StatusCode, data)}
		}
		return nil, &Error{Type: ErrTypeHTTP, Message: msg, NonRetryable: !retryableStatus(resp.StatusCode)}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Type: ErrTypeTimeout, Message: fmt.Sprintf("%s: the answer did not arrive in time: %v", where, err), Cause: err}
		}
		return nil, &Error{Type: ErrTypeNetwork, Message: fmt.Sprintf("%s: reading the answer: %v", where, err), Cause: err}
	}
	if len(data) > MaxResultBytes {
		return nil, &Error{Type: ErrTypeInvalidResult, Message: fmt.Sprintf("%s answered more than %d bytes", where, MaxResultBytes), NonRetryable: true}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return json.RawMessage("null"), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, &Error{Type: ErrTypeInvalidResult, Message: fmt.Sprintf("%s answered %s that is not JSON: %s", where, resp.Status, excerpt(data)), NonRetryable: true, Cause: err}
	}
	return buf.Bytes(), nil
}

// answerData is the data of a failure that errors: maps: the status and
// the answer's body, as JSON when it is JSON (so a handler can read
// error.data.body.reason), else as text; a body too large to keep in the
// instance is left out.
func answerData(status int, body []byte) map[string]any {
	d := map[string]any{"status": status}
	if len(body) > MaxErrorDataBytes/2 {
		return d
	}
	var v any
	if err := json.Unmarshal(body, &v); err == nil {
		d["body"] = v
	} else if s := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD")); s != "" {
		d["body"] = s
	}
	return d
}

// retryableStatus: request timeout, too many requests and server errors
// may go away; any other status will not.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// redact drops the user info, query and fragment from a URL, which may
// hold secrets. It works on the url as written, ${ } parts and all, so by
// text rather than by url.Parse.
func redact(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(bad URL)"
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if path != "" || strings.Contains(rest, "/") {
		return scheme + "://" + host + "/" + path
	}
	return scheme + "://" + host
}

// excerpt quotes the start of a body for an error message.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty body)"
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' {
			return ' '
		}
		return r
	}, truncate(s, bodyExcerptBytes))
	return s
}
