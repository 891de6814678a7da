package interpreter

// Dispatch: applying one event to the instance, from client messages
// (terminate, suspend, resume) to completions, timers and children.

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cairnhq/cairn/dsl"
)

// dispatch applies ev and reports whether anything changed.
func (r *run) dispatch(ev Event) (bool, error) {
	switch ev.Kind {
	case EvTerminate:
		return r.terminate(ev.Reason)
	case EvSuspend:
		return r.suspend(ev.Reason)
	case EvResume:
		return r.resume(ev)
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
		return r.start()
	case EvRaised:
		return r.raised(ev)
	case EvCompleted:
		return r.completed(ev)
	case EvFailed:
		return r.failed(ev)
	case EvTimer:
		return r.timer(ev)
	}
	return false, fmt.Errorf("unknown event kind %q", ev.Kind)
}

// terminate ends the instance as Terminated, its output the reason.
func (r *run) terminate(reason string) (bool, error) {
	r.stopAll()
	r.st.Status = StatusTerminated
	r.st.Output = mustJSON(reason)
	r.history(HistoryEvent{Type: "ExecutionTerminated", Reason: reason})
	return true, nil
}

// suspend holds every later event until resume (a second suspend changes
// nothing).
func (r *run) suspend(reason string) (bool, error) {
	if r.st.Status == StatusSuspended {
		return false, nil
	}
	r.st.Status = StatusSuspended
	r.history(HistoryEvent{Type: "ExecutionSuspended", Reason: reason})
	return true, nil
}

// resume applies the events held while suspended, each at its own time.
func (r *run) resume(ev Event) (bool, error) {
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

// start puts the main path's cursor at the first step and runs it.
func (r *run) start() (bool, error) {
	if r.st.Status != StatusPending || r.main.Cursor != nil {
		return false, nil
	}
	r.st.Status = StatusRunning
	r.main.Cursor = []Frame{{Block: "", Index: 0}}
	r.history(HistoryEvent{Type: "ExecutionStarted", Name: r.st.Name, Data: r.st.Input})
	r.startTimeout()
	r.enqueue(r.main)
	return true, r.runQueue()
}

// raised gives an external event to the first thread waiting for it, or
// buffers it; the internal ChildEvent goes to the call step it ends.
func (r *run) raised(ev Event) (bool, error) {
	if ev.Name == ChildEvent {
		return r.childEnded(ev)
	}
	if sch := r.def.Events[ev.Name]; sch != nil {
		// The API refuses such a raise where it can (400); one that got
		// through (sent before the schema was deployed, or by a process
		// that had not loaded it) never reaches a typed variable.
		v, _ := dsl.DecodeJSON(ev.Data) // no data: null
		if err := sch.Validate(v); err != nil {
			r.history(HistoryEvent{Type: "EventRejected", Name: ev.Name, Data: ev.Data,
				Reason: "the payload does not match the workflow's events." + ev.Name + " schema: " + err.Error()})
			return true, nil
		}
	}
	r.history(HistoryEvent{Type: "EventRaised", Name: ev.Name, Data: ev.Data})
	if r.st.Status == StatusRunning {
		for _, th := range r.threads {
			if th.Pending == nil || !th.Pending.waitsFor(ev.Name) {
				continue
			}
			step, err := waitedAt[*dsl.WaitStep](r, th, "wait")
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
}

// waitingFor returns the thread that waits for the activity task, if any.
func (r *run) waitingFor(task string) *Thread {
	return r.find(func(p *Pending) bool { return p.Kind == WaitActivity && p.TaskID == task })
}

// completed applies an activity's result to the step that waits for it.
func (r *run) completed(ev Event) (bool, error) {
	th := r.waitingFor(ev.TaskID)
	if th == nil {
		return false, nil // late or duplicate completion
	}
	step, err := waitedAt[*dsl.ActivityStep](r, th, "activity")
	if err != nil {
		return false, err
	}
	if r.finishedLate(th.Pending, ev) {
		if err := r.timedOut(th); err != nil {
			return false, err
		}
		return true, r.runQueue()
	}
	if info, bad := r.invalidResult(step, ev.Data); bad {
		if err := r.activityFailed(th, info); err != nil {
			return false, err
		}
		return true, r.runQueue()
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
}

// invalidResult checks an activity's result against the activity's
// `output:` schema: a result that breaks it fails the attempt as
// InvalidResult, retried only when the retry policy lists that type
// (a bad result is most often the same on every attempt).
func (r *run) invalidResult(step *dsl.ActivityStep, data json.RawMessage) (ErrorInfo, bool) {
	o := r.def.Activities[step.Activity]
	if o == nil || o.Output == nil {
		return ErrorInfo{}, false
	}
	v, _ := dsl.DecodeJSON(data) // no data: null
	err := o.Output.Validate(v)
	if err == nil {
		return ErrorInfo{}, false
	}
	info := ErrorInfo{Type: ErrTypeInvalidResult, Message: fmt.Sprintf(
		"step %s: activity %s returned a result that does not match its output schema: %v", step.ID, step.Activity, err)}
	if o.Retry != nil && slices.Contains(o.Retry.Retryable, ErrTypeInvalidResult) {
		info.Retryable = true
	}
	return info, true
}

// failed retries the activity that failed, or raises its error.
func (r *run) failed(ev Event) (bool, error) {
	th := r.waitingFor(ev.TaskID)
	if th == nil {
		return false, nil
	}
	if r.finishedLate(th.Pending, ev) {
		if err := r.timedOut(th); err != nil {
			return false, err
		}
		return true, r.runQueue()
	}
	info := ErrorInfo{Type: ErrTypeActivity, Message: "activity failed", Retryable: true}
	if ev.Error != nil {
		info = *ev.Error
	}
	if err := r.activityFailed(th, info); err != nil {
		return false, err
	}
	return true, r.runQueue()
}

// timer applies a fired timer: the workflow's timeout, or the one a
// thread waits on.
func (r *run) timer(ev Event) (bool, error) {
	if t := r.st.Timeout; t != nil && t.ID == ev.Timer {
		r.st.Timeout = nil
		r.history(HistoryEvent{Type: "TimerFired", Name: ev.Timer})
		r.failInstance(ErrorInfo{Type: ErrTypeTimeout, Message: fmt.Sprintf("the workflow did not finish within its timeout of %s", r.def.Timeout)})
		return true, nil
	}
	if th := r.watchOf(ev.Timer); th != nil {
		if err := r.watchFired(th, ev); err != nil {
			return false, err
		}
		return true, r.runQueue()
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

// timerFired handles the timer a thread waits on.
func (r *run) timerFired(th *Thread, ev Event) error {
	p := th.Pending
	if p.Kind != WaitYield {
		r.history(HistoryEvent{Type: "TimerFired", StepID: p.StepID, Name: ev.Timer})
	}
	switch p.Kind {
	case WaitTimer, WaitYield:
		r.slept(th, p)
	case WaitEvent:
		return r.waitTimedOut(th, p)
	case WaitRetry:
		return r.retryDue(th, p)
	case WaitChild:
		return r.checkChild(th, p)
	case WaitActivity:
		return r.activityTimerFired(th, p, ev)
	}
	return nil
}

// slept goes on after a timer wait, or after a yield (which goes back to
// the step it yielded at).
func (r *run) slept(th *Thread, p *Pending) {
	th.Pending = nil
	if p.Kind == WaitTimer {
		r.advance(th)
	}
	r.enqueue(th)
}

// waitTimedOut runs the onTimeout list of an event wait whose timeout
// fired, or raises a TimeoutError when it has none.
func (r *run) waitTimedOut(th *Thread, p *Pending) error {
	step, err := waitedAt[*dsl.WaitStep](r, th, "wait")
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
	return nil
}

// retryDue schedules the next attempt of an activity whose retry delay is
// over.
func (r *run) retryDue(th *Thread, p *Pending) error {
	step, err := waitedAt[*dsl.ActivityStep](r, th, "activity")
	if err == nil {
		th.Pending = nil
		r.enqueue(th)
		r.schedule(th, step, p.Attempt+1, p.FirstAttempt)
	}
	return err
}
