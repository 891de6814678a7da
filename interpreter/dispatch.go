package interpreter

// Dispatch: applying one event to the instance, from client messages
// (terminate, suspend, resume) to completions, timers and children.

import (
	"encoding/json"
	"fmt"

	"github.com/cairnhq/cairn/dsl"
)

// dispatch applies ev and reports whether anything changed.
func (r *run) dispatch(ev Event) (bool, error) {
	switch ev.Kind {
	case EvTerminate:
		r.stopAll()
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
		if r.main.Cursor == nil && r.main.Pending == nil {
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
	switch ev.Kind {
	case EvStart:
		if r.st.Status != StatusPending || r.main.Cursor != nil {
			return false, nil
		}
		r.st.Status = StatusRunning
		r.main.Cursor = []Frame{{Block: "", Index: 0}}
		r.history(HistoryEvent{Type: "ExecutionStarted", Name: r.st.Name, Data: r.st.Input})
		r.startTimeout()
		r.enqueue(r.main)
		return true, r.runQueue()

	case EvRaised:
		if ev.Name == ChildEvent {
			return r.childEnded(ev)
		}
		r.history(HistoryEvent{Type: "EventRaised", Name: ev.Name, Data: ev.Data})
		if r.st.Status == StatusRunning {
			for _, th := range r.threads {
				if th.Pending == nil || !th.Pending.waitsFor(ev.Name) {
					continue
				}
				step, err := r.waitStep(th)
				if err != nil {
					return false, err
				}
				if !r.receive(th, step, th.Pending, ev.Name, ev.Data) {
					return true, nil // an `all` that waits for more
				}
				r.cancelTimer(th)
				th.Pending = nil
				if r.checkVars(th, step) {
					r.advance(th)
				}
				r.enqueue(th)
				return true, r.runQueue()
			}
		}
		r.st.Buffered = append(r.st.Buffered, BufferedEvent{Name: ev.Name, Data: ev.Data, Time: ev.Time})
		return true, nil

	case EvCompleted:
		th := r.find(func(p *Pending) bool { return p.Kind == WaitActivity && p.TaskID == ev.TaskID })
		if th == nil {
			return false, nil // late or duplicate completion
		}
		step, err := r.activityStep(th)
		if err != nil {
			return false, err
		}
		p := th.Pending
		r.cancelTimer(th)
		th.Pending = nil
		r.history(HistoryEvent{Type: "TaskCompleted", StepID: step.ID, Name: step.Activity, Data: ev.Data, Attempt: p.Attempt})
		if step.Result != "" {
			r.setVar(th, step.Result, decodeJSON(ev.Data))
		}
		if r.checkVars(th, step) {
			r.advance(th)
		}
		r.enqueue(th)
		return true, r.runQueue()

	case EvFailed:
		th := r.find(func(p *Pending) bool { return p.Kind == WaitActivity && p.TaskID == ev.TaskID })
		if th == nil {
			return false, nil
		}
		info := ErrorInfo{Type: ErrTypeActivity, Message: "activity failed", Retryable: true}
		if ev.Error != nil {
			info = *ev.Error
		}
		if err := r.activityFailed(th, info); err != nil {
			return false, err
		}
		return true, r.runQueue()

	case EvTimer:
		if t := r.st.Timeout; t != nil && t.ID == ev.Timer {
			r.st.Timeout = nil
			r.history(HistoryEvent{Type: "TimerFired", Name: ev.Timer})
			r.failInstance(ErrorInfo{Type: ErrTypeTimeout, Message: fmt.Sprintf("the workflow did not finish within its timeout of %s", r.def.Timeout)})
			return true, nil
		}
		th := r.find(func(p *Pending) bool { return p.TimerID != "" && p.TimerID == ev.Timer })
		if th == nil {
			return false, nil // cancelled or superseded timer
		}
		if err := r.timerFired(th, ev); err != nil {
			return false, err
		}
		return true, r.runQueue()
	}
	return false, fmt.Errorf("unknown event kind %q", ev.Kind)
}

// timerFired handles the timer a thread waits on.
func (r *run) timerFired(th *Thread, ev Event) error {
	p := th.Pending
	if p.Kind != WaitYield {
		r.history(HistoryEvent{Type: "TimerFired", StepID: p.StepID, Name: ev.Timer})
	}
	switch p.Kind {
	case WaitTimer, WaitYield:
		th.Pending = nil
		if p.Kind == WaitTimer {
			r.advance(th)
		}
		r.enqueue(th)
	case WaitEvent:
		step, err := r.waitStep(th)
		if err != nil {
			return err
		}
		th.Pending = nil
		if !step.HasOnTimeout {
			r.raise(th, ErrorInfo{Type: ErrTypeTimeout, Message: fmt.Sprintf("step %s: %s before the timeout", step.ID, missing(step, p))})
			return nil
		}
		r.advance(th)
		r.push(th, step.OnTimeoutBlock)
		r.enqueue(th)
	case WaitRetry:
		step, err := r.activityStep(th)
		if err != nil {
			return err
		}
		th.Pending = nil
		r.enqueue(th)
		return r.schedule(th, step, p.Attempt+1, p.FirstAttempt)
	case WaitChild:
		step, ok := r.current(th)
		call, isCall := step.(*dsl.CallStep)
		if !ok || !isCall {
			return fmt.Errorf("thread %q: cursor does not point at the call step %q", th.ID, p.StepID)
		}
		p.TimerID, p.Deadline = "", nil
		r.startChild(th, call, p)
	case WaitActivity:
		// The activity's start-to-close timeout: a retryable failure.
		p.TimerID = ""
		return r.activityFailed(th, ErrorInfo{
			Type:      ErrTypeActTimeout,
			Message:   fmt.Sprintf("activity %s did not finish within its timeout", p.Activity),
			Retryable: true,
		})
	}
	return nil
}

// childEnded applies the end of a child to the call step waiting for it.
func (r *run) childEnded(ev Event) (bool, error) {
	var res ChildResult
	if err := json.Unmarshal(ev.Data, &res); err != nil || res.Child == "" {
		return false, nil
	}
	th := r.find(func(p *Pending) bool { return p.Kind == WaitChild && p.Child == res.Child })
	if th == nil || r.st.Status != StatusRunning {
		return false, nil // a repeated notice, or for a call no longer waiting
	}
	step, _ := r.current(th)
	call, ok := step.(*dsl.CallStep)
	if !ok {
		return false, fmt.Errorf("thread %q: cursor does not point at the call step %q", th.ID, th.Pending.StepID)
	}
	r.cancelTimer(th)
	th.Pending = nil
	switch res.Status {
	case StatusCompleted:
		r.history(HistoryEvent{Type: "ChildCompleted", StepID: call.ID, Name: string(res.Child), Data: res.Output})
		if call.Result != "" {
			r.setVar(th, call.Result, decodeJSON(res.Output))
		}
		if r.checkVars(th, call) {
			r.advance(th)
		}
		r.enqueue(th)
	default:
		r.history(HistoryEvent{Type: "ChildFailed", StepID: call.ID, Name: string(res.Child), Data: res.Output})
		info := ErrorInfo{Type: ErrTypeChild, StepID: call.ID, Data: JSONText(res.Output)}
		if res.Status == StatusTerminated {
			info.Message = fmt.Sprintf("step %s: child %s (%s) was terminated: %s", call.ID, res.Child, call.Workflow, decodeJSON(res.Output))
		} else {
			var ce ErrorInfo
			json.Unmarshal(res.Output, &ce)
			info.Message = fmt.Sprintf("step %s: child %s (%s) failed: %s: %s", call.ID, res.Child, call.Workflow, ce.Type, ce.Message)
		}
		r.raise(th, info)
	}
	return true, r.runQueue()
}
