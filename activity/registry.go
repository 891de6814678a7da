// Package activity runs cairn's activity tasks in process (Go handlers and the http and expr bindings) with bounded concurrency, leases and heartbeats.
package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"sync"
)

// Task is what a Handler is asked to do: one attempt of one activity call
// of one workflow instance.
type Task struct {
	// ID names the task within its instance ("t3"). Every attempt gets a
	// new ID; a redelivery of the same attempt (after a crash) keeps it, so
	// InstanceID+ID is a good idempotency key.
	ID       string
	Activity string
	// Input is the activity's input as JSON ("null" when there is none).
	Input json.RawMessage
	// Attempt is 1 for the first attempt, 2 for the first retry, and so on.
	Attempt    int
	InstanceID string
	Workflow   string // the workflow's name
	StepID     string // the activity step's id
	// Trace is the instance's trace context (a W3C traceparent; "" when
	// none), for an Observer to trace the attempt in.
	Trace string
}

// Decode unmarshals the input into v, as json.Unmarshal does.
func (t Task) Decode(v any) error {
	if err := json.Unmarshal(t.Input, v); err != nil {
		return fmt.Errorf("activity %s: decoding input: %w", t.Activity, err)
	}
	return nil
}

// Handler runs one activity task. Its result is marshalled to JSON
// (a json.RawMessage is taken as is) and becomes the activity step's
// result. An error fails the attempt, which the workflow's retry policy
// may retry; wrap it with NonRetryable, or return an *Error, to say more.
// A panic fails the attempt too (type ActivityPanic) and never the process.
// ctx is cancelled when the task's timeout passes, when this runtime lost
// the task's lease, and at shutdown after the grace period: handlers
// should return soon after.
type Handler func(ctx context.Context, t Task) (any, error)

// Func adapts a typed function to a Handler: the input is decoded into In
// (a failure to decode is a non-retryable InvalidInput error) and Out is
// the result.
func Func[In, Out any](f func(ctx context.Context, in In) (Out, error)) Handler {
	return func(ctx context.Context, t Task) (any, error) {
		var in In
		if err := json.Unmarshal(t.Input, &in); err != nil {
			return nil, &Error{Type: ErrTypeInvalidInput, Message: fmt.Sprintf("activity %s: decoding input: %v", t.Activity, err), NonRetryable: true, Cause: err}
		}
		return f(ctx, in)
	}
}

// nameRE is the language's rule for activity names.
var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`)

// Registry maps activity names to Go handlers. It is safe for concurrent
// use; handlers may be registered while a Runtime runs.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Handler
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Handler{}} }

// Register makes h the handler of the activity name. Like
// http.ServeMux.Handle it panics on a programming error: a name the
// workflow language does not allow, a nil handler, or a name registered
// twice.
func (r *Registry) Register(name string, h Handler) {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("activity: invalid activity name %q (want a letter, then up to 99 letters, digits, '_', '.' or '-')", name))
	}
	if h == nil {
		panic(fmt.Sprintf("activity: nil handler for %s", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("activity: %s registered twice", name))
	}
	r.m[name] = h
}

// Has reports whether name has a handler. It fits
// interpreter.Options.LocalActivity, so that a task of an activity with a
// handler and no binding in its workflow goes to the local queue that the
// Runtime serves instead of waiting for an external worker.
func (r *Registry) Has(name string) bool {
	_, ok := r.lookup(name)
	return ok
}

// Names lists the registered activity names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *Registry) lookup(name string) (Handler, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.m[name]
	return h, ok
}
