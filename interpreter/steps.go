package interpreter

// Step execution: exec dispatches on the step kind, one function a kind.

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// exec runs one step of a thread; the thread's cursor points at it.
func (r *run) exec(th *Thread, step dsl.Step) error {
	switch s := step.(type) {
	case *dsl.SetStep:
		for _, a := range s.Vars {
			v, err := a.Value.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
			}
			r.setVar(th, a.Name, v)
		}
		if r.checkVars(th, step) {
			r.advance(th)
		}
		return nil

	case *dsl.SetStatusStep:
		r.setStatus(th, s)
		return nil

	case *dsl.SwitchStep:
		for _, c := range s.Cases {
			ok, err := c.When.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
			}
			if ok {
				r.advance(th)
				r.push(th, c.Block)
				return nil
			}
		}
		r.advance(th)
		if s.HasDefault {
			r.push(th, s.DefaultBlock)
		}
		return nil

	case *dsl.ReturnStep:
		var out any
		if s.Value != nil {
			v, err := s.Value.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
			}
			out = v
		}
		if th != r.main {
			r.raise(th, ErrorInfo{Type: ErrTypeDefinition, Message: fmt.Sprintf("step %s: return inside a branch", s.ID)})
			return nil
		}
		r.complete(s, out)
		return nil

	case *dsl.FailStep:
		info := ErrorInfo{Type: ErrTypeFail, Message: "the workflow failed", StepID: s.ID}
		parts := []*dsl.Value{s.Error, s.Message, s.Data}
		vals := make([]any, len(parts))
		for i, v := range parts {
			if v == nil {
				continue
			}
			x, err := v.Eval(r.env(th))
			if err != nil {
				r.raise(th, r.exprError(step, err))
				return nil
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
		return nil

	case *dsl.ActivityStep:
		return r.schedule(th, s, 1, r.now)

	case *dsl.WaitStep:
		return r.wait(th, s)

	case *dsl.WhileStep:
		top := &th.Cursor[len(th.Cursor)-1]
		ok, err := s.Condition.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(step, err))
			return nil
		}
		if !ok {
			r.advance(th)
			return nil
		}
		if top.Iter >= s.Max {
			r.raise(th, ErrorInfo{Type: ErrTypeLoopLimit, Message: fmt.Sprintf("step %s: the loop ran its %d iterations (max) and its condition still holds", s.ID, s.Max)})
			return nil
		}
		top.Iter++
		r.push(th, s.Block)
		return nil

	case *dsl.TryStep:
		r.advance(th)
		r.push(th, s.Block)
		return nil

	case *dsl.ForEachStep:
		return r.forEach(th, s)

	case *dsl.ParallelStep:
		r.fork(th, s, len(s.Branches), len(s.Branches), nil)
		return nil

	case *dsl.ContinueAsNewStep:
		return r.continueAsNew(th, s)

	case *dsl.CallStep:
		r.st.Seq++
		p := &Pending{Kind: WaitChild, StepID: s.ID, Child: InstanceID(fmt.Sprintf("%s:%d", r.st.ID, r.st.Seq))}
		r.history(HistoryEvent{Type: "ChildScheduled", StepID: s.ID, Name: string(p.Child)})
		r.startChild(th, s, p)
		return nil
	}
	return fmt.Errorf("step %s: unknown step type %T", step.Base().ID, step)
}

func (r *run) setStatus(th *Thread, s *dsl.SetStatusStep) {
	v, err := s.Value.Eval(r.env(th))
	if err != nil {
		r.raise(th, r.exprError(s, err))
		return
	}
	statusErr := func(format string, args ...any) {
		r.raise(th, ErrorInfo{Type: ErrTypeStatus, Message: fmt.Sprintf("step %s: ", s.ID) + fmt.Sprintf(format, args...)})
	}
	size, err := dsl.StatusSize(v)
	if err != nil {
		statusErr("%v", err)
		return
	}
	if size > dsl.MaxStatusBytes {
		statusErr("custom status is %d bytes of UTF-16 JSON; the limit is %d", size, dsl.MaxStatusBytes)
		return
	}
	raw, err := json.Marshal(v)
	if err != nil {
		statusErr("custom status is not JSON: %v", err)
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

// schedule enqueues attempt n of an activity step and waits for it.
func (r *run) schedule(th *Thread, s *dsl.ActivityStep, attempt int, first time.Time) error {
	var input any
	if s.Input != nil {
		v, err := s.Input.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return nil
		}
		input = v
	}
	raw, err := json.Marshal(input)
	if err != nil {
		r.raise(th, ErrorInfo{Type: ErrTypeExpression, Message: fmt.Sprintf("step %s: activity input is not JSON: %v", s.ID, err)})
		return nil
	}
	task := r.newID('t')
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
		p.TimerID = r.newTimer(th, due)
		p.Deadline = &due
	}
	th.Pending = p
	r.tr.Commands = append(r.tr.Commands, &ScheduleTask{
		TaskID: task, Instance: r.st.ID, Activity: s.Activity, Input: raw, Attempt: attempt,
		StepID: s.ID, DefHash: r.def.Hash, Workflow: r.def.Name, Queue: queue, Timeout: timeout,
	})
	r.history(HistoryEvent{Type: "TaskScheduled", StepID: s.ID, Name: s.Activity, Data: raw, Attempt: attempt})
	return nil
}

// startChild asks for the child a call step waits for, and for a check
// later.
func (r *run) startChild(th *Thread, s *dsl.CallStep, p *Pending) {
	var input any
	if s.Input != nil {
		v, err := s.Input.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return
		}
		input = v
	}
	raw := mustJSON(input)
	if string(raw) == "null" {
		raw = nil
	}
	r.tr.Commands = append(r.tr.Commands, &StartChild{ID: p.Child, Parent: r.st.ID, Workflow: s.Workflow, Input: raw})
	delay := childCheck << min(p.Attempt, 10)
	if delay > childCheckMax {
		delay = childCheckMax
	}
	p.Attempt++
	due := r.now.Add(delay)
	th.Pending = p
	p.TimerID = r.newTimer(th, due)
	p.Deadline = &due
}

// continueAsNew restarts the instance with a new input: no variables, the
// cursor at the first step, the same id, buffered events and custom status.
func (r *run) continueAsNew(th *Thread, s *dsl.ContinueAsNewStep) error {
	var input any
	if s.Input != nil {
		v, err := s.Input.Eval(r.env(th))
		if err != nil {
			r.raise(th, r.exprError(s, err))
			return nil
		}
		input = v
	}
	if th != r.main {
		r.raise(th, ErrorInfo{Type: ErrTypeDefinition, Message: fmt.Sprintf("step %s: continueAsNew inside a branch", s.ID)})
		return nil
	}
	raw := mustJSON(input)
	if string(raw) == "null" {
		raw = nil
	}
	r.stopAll()
	r.st.Input = raw
	r.haveInput = false
	r.st.Generation++
	r.main.Vars = nil
	r.views = map[string]map[string]any{}
	r.main.Cursor = []Frame{{Block: "", Index: 0}}
	r.history(HistoryEvent{Type: "ContinuedAsNew", StepID: s.ID, Data: raw})
	r.startTimeout()
	return nil
}

// startTimeout starts the workflow's timeout timer, if it has one.
func (r *run) startTimeout() {
	if r.def.Timeout <= 0 {
		return
	}
	due := r.now.Add(r.def.Timeout).UTC()
	id := r.newID('w')
	r.tr.Commands = append(r.tr.Commands, &StartTimer{ID: id, Due: due})
	r.history(HistoryEvent{Type: "TimerCreated", Name: id, Data: mustJSON(due.Format(time.RFC3339Nano))})
	r.st.Timeout = &Timer{ID: id, Due: due}
}

func (r *run) complete(s *dsl.ReturnStep, out any) {
	raw, err := json.Marshal(out)
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
