package interpreter

// Waits: for events (one, any, all), for a duration or until a time.

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// wait handles a wait step: for events, or for a time.
func (r *run) wait(th *Thread, s *dsl.WaitStep) error {
	if s.Event != "" || len(s.Events) > 0 {
		r.waitEvents(th, s)
		return nil
	}
	return r.waitTime(th, s)
}

// waitEvents consumes the buffered events the wait takes, or blocks until
// the rest come or its timeout fires.
func (r *run) waitEvents(th *Thread, s *dsl.WaitStep) {
	pd := &pendingUntil{p: Pending{Kind: WaitEvent, StepID: s.ID, Event: s.Event, All: s.All}}
	p := &pd.p
	p.Events = append(p.Events, s.Events...)
	if s.All && s.Result != "" {
		r.setVar(th, s.Result, map[string]any{})
	}
	for i := 0; i < len(r.st.Buffered); {
		b := r.st.Buffered[i]
		if !p.waitsFor(b.Name) {
			i++
			continue
		}
		r.st.Buffered = append(r.st.Buffered[:i:i], r.st.Buffered[i+1:]...)
		if r.receive(th, s, p, b.Name, b.Data) {
			if r.checkVars(th, s) {
				r.advance(th)
			}
			return
		}
	}
	if s.Timeout != nil {
		d, ok := r.duration(th, s, s.Timeout)
		if !ok {
			return
		}
		pd.due = r.now.Add(d)
		p.TimerID = r.newTimer(th, pd.due)
		p.Deadline = &pd.due
	}
	th.Pending = p
}

// waitTime blocks on a timer for a duration or until a time; one already
// past goes straight on.
func (r *run) waitTime(th *Thread, s *dsl.WaitStep) error {
	var due time.Time
	switch {
	case s.Duration != nil:
		d, ok := r.duration(th, s, s.Duration)
		if !ok {
			return nil
		}
		due = r.now.Add(d)
	case s.Until != nil:
		v, ok := eval(r, th, s, s.Until)
		if !ok {
			return nil
		}
		t, err := dsl.ToTime(v)
		if err != nil {
			r.raise(th, r.exprError(s, s.Until.EvalError(err)))
			return nil
		}
		due = t
	default:
		return fmt.Errorf("step %s: wait has neither event nor timer", s.ID)
	}
	if !due.After(r.now) {
		r.advance(th)
		return nil
	}
	due = due.UTC()
	th.Pending = &Pending{Kind: WaitTimer, StepID: s.ID, Deadline: &due}
	th.Pending.TimerID = r.newTimer(th, due)
	return nil
}

// receive gives an event to an event wait and reports whether the wait is
// over: at once for `event` and `any`, with the last missing one for `all`.
func (r *run) receive(th *Thread, s *dsl.WaitStep, p *Pending, name string, data json.RawMessage) bool {
	switch {
	case s.Event != "":
		if s.Result != "" {
			r.setVar(th, s.Result, decodeJSON(data))
		}
		return true
	case !s.All:
		if s.Result != "" {
			r.setVar(th, s.Result, map[string]any{"event": name, "data": decodeJSON(data)})
		}
		return true
	}
	for i, e := range p.Events {
		if e == name {
			p.Events = append(p.Events[:i:i], p.Events[i+1:]...)
			break
		}
	}
	p.Got = append(p.Got, name)
	if s.Result != "" {
		got, _ := r.view(th)[s.Result].(map[string]any)
		next := make(map[string]any, len(got)+1)
		for k, v := range got {
			next[k] = v
		}
		next[name] = decodeJSON(data)
		r.setVar(th, s.Result, next)
	}
	return len(p.Events) == 0
}

// duration evaluates a wait's duration or timeout; what is not a
// duration, or a negative one, raises step's ExpressionError.
func (r *run) duration(th *Thread, step dsl.Step, v *dsl.Value) (time.Duration, bool) {
	x, ok := eval(r, th, step, v)
	if !ok {
		return 0, false
	}
	d, err := dsl.ToDuration(x)
	if err == nil && d < 0 {
		err = fmt.Errorf("negative duration %s", d)
	}
	if err != nil {
		r.raise(th, r.exprError(step, v.EvalError(err)))
		return 0, false
	}
	return d, true
}

// missing says which events a wait that timed out did not get.
func missing(s *dsl.WaitStep, p *Pending) string {
	switch {
	case s.Event != "":
		return fmt.Sprintf("event %q did not arrive", s.Event)
	case s.All:
		return fmt.Sprintf("events %s did not all arrive (missing %s)", quoteAll(s.Events), quoteAll(p.Events))
	}
	return fmt.Sprintf("none of the events %s arrived", quoteAll(s.Events))
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// pendingUntil is a Pending and the time its Deadline points at, made in
// one allocation for the waits that usually have a deadline.
type pendingUntil struct {
	p   Pending
	due time.Time
}
