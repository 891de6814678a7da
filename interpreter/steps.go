package interpreter

// Step execution: exec dispatches on the step kind, one function a kind.

import (
	"fmt"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// exec runs one step of a thread; the thread's cursor points at it.
func (r *run) exec(th *Thread, step dsl.Step) error {
	switch s := step.(type) {
	case *dsl.SetStep:
		r.set(th, s)
	case *dsl.SetStatusStep:
		r.setStatus(th, s)
	case *dsl.SwitchStep:
		r.switchTo(th, s)
	case *dsl.ReturnStep:
		r.ret(th, s)
	case *dsl.FailStep:
		r.fail(th, s)
	case *dsl.ActivityStep:
		r.activity(th, s)
	case *dsl.WhileStep:
		r.loop(th, s)
	case *dsl.TryStep:
		r.try(th, s)
	case *dsl.ForEachStep:
		r.forEach(th, s)
	case *dsl.ParallelStep:
		r.parallel(th, s)
	case *dsl.ContinueAsNewStep:
		r.continueAsNew(th, s)
	case *dsl.CallStep:
		r.call(th, s)
	case *dsl.WaitStep:
		return r.wait(th, s)
	default:
		return fmt.Errorf("step %s: unknown step type %T", step.Base().ID, step)
	}
	return nil
}

// set assigns the step's variables in order, each seeing the ones before.
func (r *run) set(th *Thread, s *dsl.SetStep) {
	for _, a := range s.Vars {
		v, ok := eval(r, th, s, a.Value)
		if !ok {
			return
		}
		r.setVar(th, a.Name, v)
	}
	if r.checkVars(th, s) {
		r.advance(th)
	}
}

// switchTo enters the list of the first case whose condition holds, else
// the default's, if any.
func (r *run) switchTo(th *Thread, s *dsl.SwitchStep) {
	for _, c := range s.Cases {
		holds, ok := eval(r, th, s, c.When)
		if !ok {
			return
		}
		if holds {
			r.advance(th)
			r.push(th, c.Block)
			return
		}
	}
	r.advance(th)
	if s.HasDefault {
		r.push(th, s.DefaultBlock)
	}
}

// ret completes the instance with the step's value.
func (r *run) ret(th *Thread, s *dsl.ReturnStep) {
	if out, ok := r.mainValue(th, s, s.Value, "return"); ok {
		r.complete(s, out)
	}
}

// mainValue evaluates v for a step that only the main path may run (what:
// return, continueAsNew) and reports false when it raised instead: the
// expression's error, or in a branch a DefinitionError.
func (r *run) mainValue(th *Thread, s dsl.Step, v *dsl.Value, what string) (any, bool) {
	x, ok := eval(r, th, s, v)
	if ok && th != r.main {
		r.raise(th, ErrorInfo{Type: ErrTypeDefinition, Message: fmt.Sprintf("step %s: %s inside a branch", s.Base().ID, what)})
		return nil, false
	}
	return x, ok
}

// fail raises the step's error: its type, message and data, each
// defaulted when the step leaves it out.
func (r *run) fail(th *Thread, s *dsl.FailStep) {
	info := ErrorInfo{Type: ErrTypeFail, Message: "the workflow failed", StepID: s.ID}
	parts := []*dsl.Value{s.Error, s.Message, s.Data}
	vals := make([]any, len(parts))
	for i, v := range parts {
		x, ok := eval(r, th, s, v)
		if !ok {
			return
		}
		vals[i] = x
	}
	if s.Error != nil {
		info.Type = fmt.Sprint(vals[0])
	}
	if s.Message != nil {
		info.Message = fmt.Sprint(vals[1])
	}
	if s.Data != nil {
		info.Data = JSONText(mustJSON(vals[2]))
	}
	r.raise(th, info)
}

// loop runs a while step's body once more while its condition holds, at
// most Max times.
func (r *run) loop(th *Thread, s *dsl.WhileStep) {
	top := &th.Cursor[len(th.Cursor)-1]
	holds, ok := eval(r, th, s, s.Condition)
	if !ok {
		return
	}
	if !holds {
		r.advance(th)
		return
	}
	if top.Iter >= s.Max {
		r.raise(th, ErrorInfo{Type: ErrTypeLoopLimit, Message: fmt.Sprintf("step %s: the loop ran its %d iterations (max) and its condition still holds", s.ID, s.Max)})
		return
	}
	top.Iter++
	r.push(th, s.Block)
}

// try enters the step's list; its catch is found by handle when an error
// is raised inside.
func (r *run) try(th *Thread, s *dsl.TryStep) {
	r.advance(th)
	r.push(th, s.Block)
}

// setStatus sets the instance's custom status, once it is JSON within
// the size limit and satisfies the workflow's status schema.
func (r *run) setStatus(th *Thread, s *dsl.SetStatusStep) {
	v, ok := evalRead(r, th, s, s.Value)
	if !ok {
		return
	}
	statusErr := func(format string, args ...any) {
		r.raise(th, ErrorInfo{Type: ErrTypeStatus, Message: fmt.Sprintf("step %s: ", s.ID) + fmt.Sprintf(format, args...)})
	}
	// StatusJSON is StatusSize and json.Marshal in one encoding; its
	// errors are StatusSize's (Marshal fails only where StatusSize does).
	raw, size, err := dsl.StatusJSON(v)
	if err != nil {
		statusErr("%v", err)
		return
	}
	if size > dsl.MaxStatusBytes {
		statusErr("custom status is %d bytes of UTF-16 JSON; the limit is %d", size, dsl.MaxStatusBytes)
		return
	}
	if r.def.Status != nil {
		if err := r.def.Status.Validate(v); err != nil {
			statusErr("custom status does not satisfy the workflow's status schema: %v", err)
			return
		}
	}
	r.st.CustomStatus = raw
	r.history(HistoryEvent{Type: "CustomStatusUpdated", StepID: s.ID, Data: raw})
	r.advance(th)
}

// activity schedules the first attempt of an activity step.
func (r *run) activity(th *Thread, s *dsl.ActivityStep) {
	r.schedule(th, s, 1, r.now)
}

// schedule enqueues attempt n of an activity step and waits for it.
func (r *run) schedule(th *Thread, s *dsl.ActivityStep, attempt int, first time.Time) {
	input, ok := evalRead(r, th, s, s.Input)
	if !ok {
		return
	}
	raw, err := dsl.EncodeJSON(input)
	if err != nil {
		r.raise(th, ErrorInfo{Type: ErrTypeExpression, Message: fmt.Sprintf("step %s: activity input is not JSON: %v", s.ID, err)})
		return
	}
	task := r.newID('t')
	queue, timeout := r.queueOf(s.Activity)
	pd := &pendingUntil{p: Pending{Kind: WaitActivity, StepID: s.ID, Activity: s.Activity, TaskID: task, Queue: queue, Attempt: attempt, FirstAttempt: first}}
	p := &pd.p
	if timeout > 0 {
		pd.due = r.now.Add(timeout)
		p.TimerID = r.newTimer(th, pd.due)
		p.Deadline = &pd.due
	}
	opts := r.def.Activities[s.Activity]
	r.startWatch(p, opts)
	th.Pending = p
	sched := &ScheduleTask{
		TaskID: task, Instance: r.st.ID, Activity: s.Activity, Input: raw, Attempt: attempt,
		StepID: s.ID, DefHash: r.def.Hash, Workflow: r.def.Name, Queue: queue, Timeout: timeout,
		Trace: r.st.TraceParent,
	}
	if opts != nil {
		sched.ScheduleToStart, sched.Heartbeat = opts.ScheduleToStart, opts.Heartbeat
	}
	r.command(sched)
	r.history(HistoryEvent{Type: "TaskScheduled", StepID: s.ID, Name: s.Activity, Data: raw, Attempt: attempt})
}

// queueOf returns the task queue of an activity and its start-to-close
// timeout (0 = none): the local queue for the in-process runtime's
// bindings and for unbound names it has a handler for, else the activity's
// own queue, where external workers poll.
func (r *run) queueOf(activity string) (string, time.Duration) {
	opts := r.def.Activities[activity]
	queue := activity
	var timeout time.Duration
	if opts != nil {
		timeout = opts.Timeout
		if opts.Binding != nil && opts.Binding.Kind != dsl.BindWorker {
			queue = LocalQueue
		}
	}
	if queue != LocalQueue && (opts == nil || opts.Binding == nil) && r.in.opts.LocalActivity != nil && r.in.opts.LocalActivity(activity) {
		queue = LocalQueue
	}
	return queue, timeout
}

// continueAsNew restarts the instance with a new input: no variables, the
// cursor at the first step, the same id, buffered events and custom status.
func (r *run) continueAsNew(th *Thread, s *dsl.ContinueAsNewStep) {
	input, ok := r.mainValue(th, s, s.Input, "continueAsNew")
	if !ok {
		return
	}
	raw := mustJSON(input)
	if string(raw) == "null" {
		raw = nil
	}
	next := r.def
	if r.latest != nil && !s.SameVersion && r.latest.Hash != r.def.Hash {
		next = r.latest
		if next.Input != nil {
			v, _ := dsl.DecodeJSON(raw) // as JSON has it: the schema knows JSON's types
			if err := next.Input.Validate(v); err != nil {
				r.failInstance(ErrorInfo{Type: ErrTypeInvalidInput, StepID: s.ID, Message: fmt.Sprintf(
					"step %s: continueAsNew onto the latest version of %s (%.12s): the new input does not match its input schema: %v (version: same keeps this run's version)",
					s.ID, next.Name, next.Hash, err)})
				return
			}
		}
	}
	r.stopAll()
	r.st.Input = raw
	r.haveInput = false
	r.st.Generation++
	r.main.Vars = nil
	r.dropViews()
	r.main.Cursor = []Frame{{Block: "", Index: 0}}
	h := HistoryEvent{Type: "ContinuedAsNew", StepID: s.ID, Data: raw}
	if next != r.def {
		// The next run starts on the new version: the steps from here on
		// are its.
		h.Name = next.Hash
		r.def, r.st.DefHash = next, next.Hash
	}
	r.history(h)
	r.startTimeout()
}

// startTimeout starts the workflow's timeout timer, if it has one.
func (r *run) startTimeout() {
	if r.def.Timeout <= 0 {
		return
	}
	due := r.now.Add(r.def.Timeout).UTC()
	id := r.newID('w')
	r.command(&StartTimer{ID: id, Due: due})
	r.history(HistoryEvent{Type: "TimerCreated", Name: id, Data: timeJSON(due)})
	r.st.Timeout = &Timer{ID: id, Due: due}
}

// complete ends the instance as Completed with out (s is the return
// step, nil when the main path ran out of steps).
func (r *run) complete(s *dsl.ReturnStep, out any) {
	raw, err := dsl.EncodeJSON(out)
	if err != nil {
		r.failInstance(ErrorInfo{Type: ErrTypeExpression, Message: fmt.Sprintf("output is not JSON: %v", err)})
		return
	}
	if string(raw) == "null" {
		raw = nil
	}
	r.stopAll()
	r.st.Status = StatusCompleted
	r.st.Output = raw
	h := HistoryEvent{Type: "ExecutionCompleted", Data: raw}
	if s != nil {
		h.StepID = s.ID
	}
	r.history(h)
}
