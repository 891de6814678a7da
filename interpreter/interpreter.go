// Package interpreter runs compiled workflows: a pure (state, event) → (state', commands) step function, and the engine loop that drives it against a Store.
package interpreter

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// Limits on what one instance may hold.
const (
	MaxVarsBytes = 1 << 20 // all variables' JSON together
	// maxStepsPerTransition stops a definition that would spin without
	// blocking; v1 has no loops, so reaching it means a bug, not a workflow.
	maxStepsPerTransition = 100000
)

// Error types an instance can fail with (ErrorInfo.Type).
const (
	ErrTypeExpression   = "ExpressionError"
	ErrTypeStatus       = "CustomStatusError"
	ErrTypeVariables    = "VariablesTooLarge"
	ErrTypeTimeout      = "TimeoutError"
	ErrTypeActivity     = "ActivityFailed"
	ErrTypeActTimeout   = "ActivityTimeout"
	ErrTypeDefinition   = "DefinitionError"
	ErrTypeFail         = "WorkflowFailed"
	ErrTypeInternalStep = "InternalError"
)

// Options configure an Interpreter.
type Options struct {
	// LocalActivity reports whether an activity name without a binding in
	// the workflow has a Go handler registered in this process; such tasks
	// go to the local queue instead of waiting for an external worker.
	LocalActivity func(name string) bool
}

// Interpreter computes transitions. It holds no state of its own and is safe
// for concurrent use.
type Interpreter struct {
	opts Options
}

// New returns an Interpreter.
func New(opts Options) *Interpreter { return &Interpreter{opts: opts} }

// NewInstanceState builds what starting an instance writes: a Pending state
// at revision 0 and the ExecutionStarted work item.
func NewInstanceState(def *dsl.Workflow, id InstanceID, input json.RawMessage, now time.Time) NewInstance {
	now = now.UTC()
	if len(input) == 0 || string(input) == "null" {
		input = nil
	}
	return NewInstance{
		State: &State{
			ID:              id,
			Name:            def.Name,
			DefHash:         def.Hash,
			Status:          StatusPending,
			Input:           input,
			CreatedTime:     now,
			LastUpdatedTime: now,
		},
		Start: Event{Kind: EvStart, Time: now},
	}
}

// Step applies one event to a state and returns the transition to commit.
// It returns (nil, nil) when the event changes nothing (a late timer, a
// duplicate completion, anything sent to a finished instance): the caller
// acknowledges it and moves on. st is not modified.
func (in *Interpreter) Step(def *dsl.Workflow, st *State, ev Event) (*Transition, error) {
	if st.Status.Terminal() {
		return nil, nil
	}
	r := &run{in: in, def: def, st: st.clone(), ev: ev, now: ev.Time.UTC()}
	r.tr = &Transition{State: r.st, FromRevision: st.Revision}
	changed, err := r.dispatch(ev)
	if err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	r.st.Revision = st.Revision + 1
	r.st.LastUpdatedTime = r.now
	if r.st.Status != st.Status || string(r.st.CustomStatus) != string(st.CustomStatus) {
		r.tr.StatusChanged = true
	}
	return r.tr, nil
}

// run is one Step call's working set.
type run struct {
	in   *Interpreter
	def  *dsl.Workflow
	st   *State
	ev   Event
	now  time.Time
	tr   *Transition
	vars map[string]any // decoded lazily from st.Vars
}

func (s *State) clone() *State {
	c := *s
	if s.Vars != nil {
		c.Vars = make(map[string]json.RawMessage, len(s.Vars))
		for k, v := range s.Vars {
			c.Vars[k] = v
		}
	}
	c.Cursor = append([]Frame(nil), s.Cursor...)
	c.Buffered = append([]BufferedEvent(nil), s.Buffered...)
	c.Held = append([]Event(nil), s.Held...)
	if s.Pending != nil {
		p := *s.Pending
		c.Pending = &p
	}
	return &c
}

// dispatch applies ev and reports whether anything changed.
func (r *run) dispatch(ev Event) (bool, error) {
	switch ev.Kind {
	case EvTerminate:
		r.cancelPendingTimer()
		r.st.Pending = nil
		r.st.Cursor = nil
		r.st.Status = StatusTerminated
		r.st.Output = mustJSON(ev.Reason)
		r.history(HistoryEvent{Type: "ExecutionTerminated", Reason: ev.Reason})
		return true, nil
	case EvSuspend:
		if r.st.Status == StatusSuspended {
			return false, nil
		}
		r.st.Status = StatusSuspended
		r.history(HistoryEvent{Type: "ExecutionSuspended", Reason: ev.Reason})
		return true, nil
	case EvResume:
		if r.st.Status != StatusSuspended {
			return false, nil
		}
		r.history(HistoryEvent{Type: "ExecutionResumed", Reason: ev.Reason})
		held := r.st.Held
		r.st.Held = nil
		r.st.Status = StatusRunning
		if r.st.Cursor == nil && r.st.Pending == nil {
			r.st.Status = StatusPending // suspended before it started
		}
		for _, h := range held {
			if r.st.Status.Terminal() {
				break
			}
			r.now = h.Time.UTC()
			if _, err := r.apply(h); err != nil {
				return false, err
			}
		}
		r.now = ev.Time.UTC()
		return true, nil
	}
	if r.st.Status == StatusSuspended {
		// Everything else waits until resume, in arrival order.
		r.st.Held = append(r.st.Held, ev)
		return true, nil
	}
	return r.apply(ev)
}

// apply handles the events that advance the workflow.
func (r *run) apply(ev Event) (bool, error) {
	p := r.st.Pending
	switch ev.Kind {
	case EvStart:
		if r.st.Status != StatusPending || r.st.Cursor != nil {
			return false, nil
		}
		r.st.Status = StatusRunning
		r.st.Cursor = []Frame{{Block: "", Index: 0}}
		r.history(HistoryEvent{Type: "ExecutionStarted", Name: r.st.Name, Data: r.st.Input})
		return true, r.runSteps()

	case EvRaised:
		r.history(HistoryEvent{Type: "EventRaised", Name: ev.Name, Data: ev.Data})
		if p != nil && p.Kind == WaitEvent && p.Event == ev.Name && r.st.Status == StatusRunning {
			step, ok := r.waitStep()
			if !ok {
				return false, fmt.Errorf("cursor does not point at the wait step %q", p.StepID)
			}
			r.cancelPendingTimer()
			r.st.Pending = nil
			if step.Result != "" {
				r.setVar(step.Result, decodeJSON(ev.Data))
			}
			r.advance()
			return true, r.runSteps()
		}
		r.st.Buffered = append(r.st.Buffered, BufferedEvent{Name: ev.Name, Data: ev.Data, Time: ev.Time})
		return true, nil

	case EvCompleted:
		if p == nil || p.Kind != WaitActivity || p.TaskID != ev.TaskID {
			return false, nil // late or duplicate completion
		}
		step, ok := r.activityStep()
		if !ok {
			return false, fmt.Errorf("cursor does not point at the activity step %q", p.StepID)
		}
		r.cancelPendingTimer()
		r.st.Pending = nil
		r.history(HistoryEvent{Type: "TaskCompleted", StepID: step.ID, Name: step.Activity, Data: ev.Data, Attempt: p.Attempt})
		if step.Result != "" {
			r.setVar(step.Result, decodeJSON(ev.Data))
		}
		r.advance()
		return true, r.runSteps()

	case EvFailed:
		if p == nil || p.Kind != WaitActivity || p.TaskID != ev.TaskID {
			return false, nil
		}
		info := ErrorInfo{Type: ErrTypeActivity, Message: "activity failed", Retryable: true}
		if ev.Error != nil {
			info = *ev.Error
		}
		return true, r.activityFailed(info)

	case EvTimer:
		if p == nil || p.TimerID == "" || p.TimerID != ev.Timer {
			return false, nil // cancelled or superseded timer
		}
		r.history(HistoryEvent{Type: "TimerFired", StepID: p.StepID, Name: ev.Timer})
		switch p.Kind {
		case WaitTimer:
			r.st.Pending = nil
			r.advance()
			return true, r.runSteps()
		case WaitEvent:
			step, ok := r.waitStep()
			if !ok {
				return false, fmt.Errorf("cursor does not point at the wait step %q", p.StepID)
			}
			r.st.Pending = nil
			if !step.HasOnTimeout {
				r.fail(step, ErrTypeTimeout, fmt.Sprintf("step %s: event %q did not arrive before the timeout", step.ID, step.Event))
				return true, nil
			}
			r.advance()
			r.push(step.OnTimeoutBlock)
			return true, r.runSteps()
		case WaitRetry:
			step, ok := r.activityStep()
			if !ok {
				return false, fmt.Errorf("cursor does not point at the activity step %q", p.StepID)
			}
			r.st.Pending = nil
			return true, r.schedule(step, p.Attempt+1, p.FirstAttempt)
		case WaitActivity:
			// The activity's start-to-close timeout: a retryable failure.
			r.st.Pending.TimerID = ""
			return true, r.activityFailed(ErrorInfo{
				Type:      ErrTypeActTimeout,
				Message:   fmt.Sprintf("activity %s did not finish within its timeout", p.Activity),
				Retryable: true,
			})
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown event kind %q", ev.Kind)
}

// activityFailed retries the pending activity or, after the last attempt,
// runs its onError steps or fails the instance.
func (r *run) activityFailed(info ErrorInfo) error {
	p := r.st.Pending
	step, ok := r.activityStep()
	if !ok {
		return fmt.Errorf("cursor does not point at the activity step %q", p.StepID)
	}
	r.cancelPendingTimer()
	info.Attempt = p.Attempt
	info.StepID = step.ID
	r.history(HistoryEvent{Type: "TaskFailed", StepID: step.ID, Name: step.Activity, Data: mustJSON(info), Attempt: p.Attempt})
	if info.Retryable {
		if pol := r.retryPolicy(step.Activity); pol != nil && p.Attempt < pol.MaxAttempts {
			delay := pol.Delay(p.Attempt - 1)
			if pol.RetryTimeout <= 0 || r.now.Add(delay).Sub(p.FirstAttempt) <= pol.RetryTimeout {
				due := r.now.Add(delay)
				timer := r.newTimer(due)
				r.st.Pending = &Pending{Kind: WaitRetry, StepID: step.ID, Activity: step.Activity, Attempt: p.Attempt,
					FirstAttempt: p.FirstAttempt, TimerID: timer, Deadline: &due}
				return nil
			}
		}
	}
	r.st.Pending = nil
	if step.OnError != nil {
		r.setVar("error", map[string]any{"type": info.Type, "message": info.Message, "attempt": float64(info.Attempt)})
		r.advance()
		r.push(step.OnErrorBlock)
		return r.runSteps()
	}
	r.fail(step, info.Type, fmt.Sprintf("step %s: activity %s failed after %d attempt(s): %s", step.ID, step.Activity, info.Attempt, info.Message))
	return nil
}

func (r *run) retryPolicy(activity string) *dsl.RetryPolicy {
	if o := r.def.Activities[activity]; o != nil {
		return o.Retry
	}
	return nil
}

// runSteps runs non-blocking steps until the instance blocks or ends.
func (r *run) runSteps() error {
	for n := 0; ; n++ {
		if n > maxStepsPerTransition {
			r.fail(nil, ErrTypeInternalStep, "too many steps in one transition")
			return nil
		}
		if len(r.st.Cursor) == 0 {
			r.complete(nil, nil)
			return nil
		}
		top := &r.st.Cursor[len(r.st.Cursor)-1]
		block, ok := r.def.Blocks[top.Block]
		if !ok {
			return fmt.Errorf("cursor names unknown block %q", top.Block)
		}
		if top.Index >= len(block) {
			r.st.Cursor = r.st.Cursor[:len(r.st.Cursor)-1]
			continue
		}
		step := block[top.Index]
		base := step.Base()
		if base.If != nil {
			ok, err := base.If.Eval(r.env())
			if err != nil {
				r.failExpr(step, err)
				return nil
			}
			if !ok {
				top.Index++
				continue
			}
		}
		blocked, err := r.exec(step)
		if err != nil {
			return err
		}
		if blocked || r.st.Status.Terminal() {
			return nil
		}
	}
}

// exec runs one step; it reports whether the instance now waits.
func (r *run) exec(step dsl.Step) (bool, error) {
	switch s := step.(type) {
	case *dsl.SetStep:
		for _, a := range s.Vars {
			v, err := a.Value.Eval(r.env())
			if err != nil {
				r.failExpr(step, err)
				return false, nil
			}
			r.setVar(a.Name, v)
		}
		if r.checkVars(step) {
			r.advance()
		}
		return false, nil

	case *dsl.SetStatusStep:
		v, err := s.Value.Eval(r.env())
		if err != nil {
			r.failExpr(step, err)
			return false, nil
		}
		size, err := dsl.StatusSize(v)
		if err != nil {
			r.fail(s, ErrTypeStatus, fmt.Sprintf("step %s: %v", s.ID, err))
			return false, nil
		}
		if size > dsl.MaxStatusBytes {
			r.fail(s, ErrTypeStatus, fmt.Sprintf("step %s: custom status is %d bytes of UTF-16 JSON; the limit is %d", s.ID, size, dsl.MaxStatusBytes))
			return false, nil
		}
		raw, err := json.Marshal(v)
		if err != nil {
			r.fail(s, ErrTypeStatus, fmt.Sprintf("step %s: custom status is not JSON: %v", s.ID, err))
			return false, nil
		}
		if r.def.Status != nil {
			if err := r.def.Status.Validate(v); err != nil {
				r.fail(s, ErrTypeStatus, fmt.Sprintf("step %s: custom status does not satisfy the workflow's status schema: %v", s.ID, err))
				return false, nil
			}
		}
		r.st.CustomStatus = raw
		r.history(HistoryEvent{Type: "CustomStatusUpdated", StepID: s.ID, Data: raw})
		r.advance()
		return false, nil

	case *dsl.SwitchStep:
		r.advance()
		for _, c := range s.Cases {
			ok, err := c.When.Eval(r.env())
			if err != nil {
				r.failExpr(step, err)
				return false, nil
			}
			if ok {
				r.push(c.Block)
				return false, nil
			}
		}
		if s.HasDefault {
			r.push(s.DefaultBlock)
		}
		return false, nil

	case *dsl.ReturnStep:
		var out any
		if s.Value != nil {
			v, err := s.Value.Eval(r.env())
			if err != nil {
				r.failExpr(step, err)
				return false, nil
			}
			out = v
		}
		r.complete(s, out)
		return false, nil

	case *dsl.FailStep:
		typ, msg := ErrTypeFail, "the workflow failed"
		if s.Error != nil {
			v, err := s.Error.Eval(r.env())
			if err != nil {
				r.failExpr(step, err)
				return false, nil
			}
			typ = fmt.Sprint(v)
		}
		if s.Message != nil {
			v, err := s.Message.Eval(r.env())
			if err != nil {
				r.failExpr(step, err)
				return false, nil
			}
			msg = fmt.Sprint(v)
		}
		r.fail(s, typ, msg)
		return false, nil

	case *dsl.ActivityStep:
		return true, r.schedule(s, 1, r.now)

	case *dsl.WaitStep:
		return r.wait(s)
	}
	return false, fmt.Errorf("step %s: unknown step type %T", step.Base().ID, step)
}

// schedule enqueues attempt n of an activity step and waits for it.
func (r *run) schedule(s *dsl.ActivityStep, attempt int, first time.Time) error {
	var input any
	if s.Input != nil {
		v, err := s.Input.Eval(r.env())
		if err != nil {
			r.failExpr(s, err)
			return nil
		}
		input = v
	}
	raw, err := json.Marshal(input)
	if err != nil {
		r.fail(s, ErrTypeExpression, fmt.Sprintf("step %s: activity input is not JSON: %v", s.ID, err))
		return nil
	}
	r.st.Seq++
	task := fmt.Sprintf("t%d", r.st.Seq)
	opts := r.def.Activities[s.Activity]
	queue := s.Activity
	var timeout time.Duration
	if opts != nil {
		timeout = opts.Timeout
		if opts.Binding != nil && opts.Binding.Kind != dsl.BindWorker {
			queue = LocalQueue
		}
	}
	if queue != LocalQueue && (opts == nil || opts.Binding == nil) && r.in.opts.LocalActivity != nil && r.in.opts.LocalActivity(s.Activity) {
		queue = LocalQueue
	}
	p := &Pending{Kind: WaitActivity, StepID: s.ID, Activity: s.Activity, TaskID: task, Attempt: attempt, FirstAttempt: first}
	if timeout > 0 {
		due := r.now.Add(timeout)
		p.TimerID = r.newTimer(due)
		p.Deadline = &due
	}
	r.st.Pending = p
	r.tr.Commands = append(r.tr.Commands, &ScheduleTask{
		TaskID: task, Instance: r.st.ID, Activity: s.Activity, Input: raw, Attempt: attempt,
		StepID: s.ID, DefHash: r.def.Hash, Workflow: r.def.Name, Queue: queue, Timeout: timeout,
	})
	r.history(HistoryEvent{Type: "TaskScheduled", StepID: s.ID, Name: s.Activity, Data: raw, Attempt: attempt})
	return nil
}

// wait handles a wait step: consume a buffered event, or block.
func (r *run) wait(s *dsl.WaitStep) (bool, error) {
	if s.Event != "" {
		for i, b := range r.st.Buffered {
			if b.Name == s.Event {
				r.st.Buffered = append(r.st.Buffered[:i:i], r.st.Buffered[i+1:]...)
				if s.Result != "" {
					r.setVar(s.Result, decodeJSON(b.Data))
					if !r.checkVars(s) {
						return false, nil
					}
				}
				r.advance()
				return false, nil
			}
		}
		p := &Pending{Kind: WaitEvent, StepID: s.ID, Event: s.Event}
		if s.Timeout != nil {
			d, err := r.duration(s.Timeout)
			if err != nil {
				r.failExpr(s, err)
				return false, nil
			}
			due := r.now.Add(d)
			p.TimerID = r.newTimer(due)
			p.Deadline = &due
		}
		r.st.Pending = p
		return true, nil
	}
	var due time.Time
	switch {
	case s.Duration != nil:
		d, err := r.duration(s.Duration)
		if err != nil {
			r.failExpr(s, err)
			return false, nil
		}
		due = r.now.Add(d)
	case s.Until != nil:
		v, err := s.Until.Eval(r.env())
		if err == nil {
			due, err = dsl.ToTime(v)
		}
		if err != nil {
			r.failExpr(s, err)
			return false, nil
		}
	default:
		return false, fmt.Errorf("step %s: wait has neither event nor timer", s.ID)
	}
	if !due.After(r.now) {
		r.advance()
		return false, nil
	}
	due = due.UTC()
	r.st.Pending = &Pending{Kind: WaitTimer, StepID: s.ID, TimerID: r.newTimer(due), Deadline: &due}
	return true, nil
}

func (r *run) duration(v *dsl.Value) (time.Duration, error) {
	x, err := v.Eval(r.env())
	if err != nil {
		return 0, err
	}
	d, err := dsl.ToDuration(x)
	if err != nil {
		return 0, &dsl.EvalError{Pos: v.Pos, Err: err}
	}
	if d < 0 {
		return 0, &dsl.EvalError{Pos: v.Pos, Err: fmt.Errorf("negative duration %s", d)}
	}
	return d, nil
}

// newTimer allocates a timer id and the command that starts it.
func (r *run) newTimer(due time.Time) string {
	r.st.Seq++
	id := fmt.Sprintf("w%d", r.st.Seq)
	r.tr.Commands = append(r.tr.Commands, &StartTimer{ID: id, Due: due.UTC()})
	r.history(HistoryEvent{Type: "TimerCreated", StepID: r.currentStepID(), Name: id, Data: mustJSON(due.UTC().Format(time.RFC3339Nano))})
	return id
}

func (r *run) cancelPendingTimer() {
	if p := r.st.Pending; p != nil && p.TimerID != "" && p.Deadline != nil {
		r.tr.Commands = append(r.tr.Commands, &CancelTimer{ID: p.TimerID, Due: *p.Deadline})
		p.TimerID = ""
	}
}

func (r *run) currentStepID() dsl.StepID {
	if s, ok := r.current(); ok {
		return s.Base().ID
	}
	return ""
}

// current returns the step the top frame points at.
func (r *run) current() (dsl.Step, bool) {
	if len(r.st.Cursor) == 0 {
		return nil, false
	}
	top := r.st.Cursor[len(r.st.Cursor)-1]
	block := r.def.Blocks[top.Block]
	if top.Index < 0 || top.Index >= len(block) {
		return nil, false
	}
	return block[top.Index], true
}

func (r *run) waitStep() (*dsl.WaitStep, bool) {
	s, ok := r.current()
	if !ok {
		return nil, false
	}
	w, ok := s.(*dsl.WaitStep)
	return w, ok
}

func (r *run) activityStep() (*dsl.ActivityStep, bool) {
	s, ok := r.current()
	if !ok {
		return nil, false
	}
	a, ok := s.(*dsl.ActivityStep)
	return a, ok
}

// advance moves the top frame past its current step.
func (r *run) advance() {
	if n := len(r.st.Cursor); n > 0 {
		r.st.Cursor[n-1].Index++
	}
}

func (r *run) push(b dsl.BlockID) {
	r.st.Cursor = append(r.st.Cursor, Frame{Block: b})
}

func (r *run) complete(s *dsl.ReturnStep, out any) {
	raw, err := json.Marshal(out)
	if err != nil {
		r.fail(s, ErrTypeExpression, fmt.Sprintf("output is not JSON: %v", err))
		return
	}
	if string(raw) == "null" {
		raw = nil
	}
	r.st.Status = StatusCompleted
	r.st.Output = raw
	r.st.Cursor = nil
	r.st.Pending = nil
	h := HistoryEvent{Type: "ExecutionCompleted", Data: raw}
	if s != nil {
		h.StepID = s.ID
	}
	r.history(h)
}

// fail ends the instance as Failed; its output is the ErrorInfo.
func (r *run) fail(step dsl.Step, typ, msg string) {
	r.cancelPendingTimer()
	info := ErrorInfo{Type: typ, Message: msg}
	if step != nil {
		info.StepID = step.Base().ID
	}
	r.st.Status = StatusFailed
	r.st.Output = mustJSON(info)
	r.st.Cursor = nil
	r.st.Pending = nil
	r.history(HistoryEvent{Type: "ExecutionFailed", StepID: info.StepID, Data: r.st.Output})
}

func (r *run) failExpr(step dsl.Step, err error) {
	r.fail(step, ErrTypeExpression, fmt.Sprintf("step %s: %v", step.Base().ID, err))
}

func (r *run) history(h HistoryEvent) {
	if h.Timestamp.IsZero() {
		h.Timestamp = r.now
	}
	r.tr.History = append(r.tr.History, h)
}

// env builds the expression environment; variables are decoded once per
// transition.
func (r *run) env() *dsl.Env {
	if r.vars == nil {
		r.vars = make(map[string]any, len(r.st.Vars))
		for k, v := range r.st.Vars {
			r.vars[k] = decodeJSON(v)
		}
	}
	return &dsl.Env{
		Input:    decodeJSON(r.st.Input),
		Vars:     r.vars,
		Instance: dsl.InstanceInfo{ID: string(r.st.ID), Name: r.st.Name, CreatedTime: r.st.CreatedTime},
		Now:      r.now,
	}
}

func (r *run) setVar(name string, v any) {
	r.env()
	r.vars[name] = v
	raw, err := json.Marshal(v)
	if err != nil {
		raw = []byte("null")
	}
	if r.st.Vars == nil {
		r.st.Vars = map[string]json.RawMessage{}
	}
	r.st.Vars[name] = raw
}

// checkVars fails the instance when its variables outgrow MaxVarsBytes.
func (r *run) checkVars(step dsl.Step) bool {
	total := 0
	for k, v := range r.st.Vars {
		total += len(k) + len(v)
	}
	if total > MaxVarsBytes {
		r.fail(step, ErrTypeVariables, fmt.Sprintf("step %s: variables are %d bytes of JSON; the limit is %d", step.Base().ID, total, MaxVarsBytes))
		return false
	}
	return true
}

func decodeJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	return v
}

func mustJSON(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with plain structs and strings
	}
	return raw
}
