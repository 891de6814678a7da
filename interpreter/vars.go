package interpreter

// Variables and the expression environment: what each thread sees,
// decoded once per transition, and the bound on their size.

import (
	"encoding/json"
	"fmt"

	"github.com/cairnhq/cairn/dsl"
)

// env returns the expression environment of a thread. It is one Env
// per run, refilled for each evaluation rather than allocated: an
// evaluation is over before the next begins, and nothing it returns
// holds the Env.
func (r *run) env(th *Thread) *dsl.Env {
	if !r.haveInput {
		r.input, r.haveInput = decodeJSON(r.st.Input), true
	}
	r.envBuf = dsl.Env{
		Input:    r.input,
		Vars:     r.view(th),
		Instance: dsl.InstanceInfo{ID: string(r.st.ID), Name: r.st.Name, CreatedTime: r.st.CreatedTime},
		Now:      r.now,
	}
	return &r.envBuf
}

// view returns the variables a thread sees, decoded once per transition:
// its own over its parents'. A parent waits while its branches run, so
// what it sees cannot change under them.
func (r *run) view(th *Thread) map[string]any {
	if th == r.main {
		if r.mainView == nil {
			r.mainView = make(map[string]any, len(th.Vars))
			for k, v := range th.Vars {
				r.mainView[k] = decodeJSON(v)
			}
		}
		return r.mainView
	}
	if m, ok := r.views[th.ID]; ok {
		return m
	}
	var base map[string]any
	if p := r.thread(th.Parent); p != nil {
		base = r.view(p)
	}
	m := make(map[string]any, len(base)+len(th.Vars))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range th.Vars {
		m[k] = decodeJSON(v)
	}
	if r.views == nil {
		r.views = map[string]map[string]any{}
	}
	r.views[th.ID] = m
	return m
}

// dropView forgets the variables a thread sees, to be decoded again.
func (r *run) dropView(th *Thread) {
	if th == r.main {
		r.mainView = nil
	}
	delete(r.views, th.ID)
}

// dropViews forgets every thread's view.
func (r *run) dropViews() {
	r.mainView = nil
	clear(r.views)
}

func (r *run) setVar(th *Thread, name string, v any) {
	r.view(th)[name] = v
	raw, err := dsl.EncodeJSON(v)
	if err != nil {
		raw = []byte("null")
	}
	if th.Vars == nil {
		th.Vars = map[string]json.RawMessage{}
	}
	th.Vars[name] = raw
}

func (r *run) delVar(th *Thread, name string) {
	delete(th.Vars, name)
	r.dropView(th) // it may now see a parent's value
}

// checkVars raises VariablesTooLarge when the variables of every thread
// together outgrow MaxVarsBytes.
func (r *run) checkVars(th *Thread, step dsl.Step) bool {
	total := 0
	for _, t := range r.threads {
		for k, v := range t.Vars {
			total += len(k) + len(v)
		}
	}
	if total > MaxVarsBytes {
		r.raise(th, ErrorInfo{Type: ErrTypeVariables, Message: fmt.Sprintf("step %s: variables are %d bytes of JSON; the limit is %d", step.Base().ID, total, MaxVarsBytes), StepID: step.Base().ID})
		return false
	}
	return true
}

// decodeJSON is json.Unmarshal of raw into an any (nil for none or
// bad text), through dsl.DecodeJSON's direct path.
func decodeJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	v, err := dsl.DecodeJSON(raw)
	if err != nil {
		return nil
	}
	return v
}

// mustJSON is json.Marshal(v), through dsl.EncodeJSON's direct path for
// the plain values expressions yield.
func mustJSON(v any) json.RawMessage {
	raw, err := dsl.EncodeJSON(v)
	if err != nil {
		panic(err) // only called with plain structs, strings and decoded JSON
	}
	return raw
}

// expression is a compiled expression: a *dsl.Value or a *dsl.Condition.
type expression[T any] interface {
	Eval(env *dsl.Env) (T, error)
}

// eval evaluates x in the environment of thread th. When it fails, it
// raises the ExpressionError of step and reports false: the caller stops
// running the step and returns.
func eval[T any](r *run, th *Thread, step dsl.Step, x expression[T]) (T, bool) {
	v, err := x.Eval(r.env(th))
	if err != nil {
		r.raise(th, r.exprError(step, err))
		return v, false
	}
	return v, true
}

// evalRead is eval for a value the caller only reads (encodes,
// validates): a literal is the model's own, not a copy of it.
func evalRead(r *run, th *Thread, step dsl.Step, v *dsl.Value) (any, bool) {
	if lit, ok := v.SharedLiteral(); ok {
		return lit, true
	}
	return eval(r, th, step, v)
}
