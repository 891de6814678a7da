package interpreter

// Errors: raising one at a step, the onError or catch that takes it,
// activity retries, and failing the instance.

import (
	"encoding/json"
	"fmt"

	"github.com/cairnhq/cairn/dsl"
)

// raise handles an error of the step a thread's cursor points at: the
// nearest onError or catch that takes it runs, in that thread; a branch
// with none ends, with its siblings, and the error goes on at the parallel
// or forEach step; the main path with none fails the instance.
func (r *run) raise(th *Thread, info ErrorInfo) {
	if info.StepID == "" {
		info.StepID = r.currentStepID(th)
	}
	for {
		r.cancelTimer(th)
		th.Pending = nil
		if r.handle(th, info) {
			r.history(HistoryEvent{Type: "ErrorHandled", StepID: info.StepID, Data: mustJSON(info)})
			r.enqueue(th)
			return
		}
		if th == r.main {
			r.failInstance(info)
			return
		}
		parent := r.thread(th.Parent)
		if parent == nil {
			r.failInstance(info)
			return
		}
		r.history(HistoryEvent{Type: "BranchFailed", StepID: info.StepID, Name: th.ID, Data: mustJSON(info)})
		r.dropBranches(parent)
		th = parent
	}
}

// handle moves a thread's cursor into the handler that takes the error of
// its current step: the step's own onError, else that of the nearest
// enclosing step (a try's catch when it takes the error's type). Errors
// raised inside a handler go past the step that owns it.
func (r *run) handle(th *Thread, info ErrorInfo) bool {
	top := len(th.Cursor) - 1
	if top < 0 {
		return false
	}
	if step, ok := r.stepAt(th.Cursor[top]); ok {
		if b := step.Base(); b.OnError != nil {
			r.advance(th)
			r.enterHandler(th, b.OnErrorBlock, "error", info)
			return true
		}
	}
	for k := top; k >= 1; k-- {
		block := th.Cursor[k].Block
		owner := r.def.Owner[block]
		if owner == nil {
			continue
		}
		b := owner.Base()
		if b.OnError != nil && block == b.OnErrorBlock {
			continue
		}
		hblock, name := dsl.BlockID(""), ""
		if t, ok := owner.(*dsl.TryStep); ok && block == t.Block && t.Catch.Handles(info.Type) {
			hblock, name = t.Catch.Block, t.Catch.As
		} else if b.OnError != nil {
			hblock, name = b.OnErrorBlock, "error"
		} else {
			continue
		}
		for len(th.Cursor) > k {
			r.popFrame(th)
		}
		f := &th.Cursor[k-1]
		f.Index = indexOf(r.def.Blocks[f.Block], owner) + 1
		f.Iter = 0
		r.enterHandler(th, hblock, name, info)
		return true
	}
	return false
}

func indexOf(block []dsl.Step, s dsl.Step) int {
	for i, x := range block {
		if x == s {
			return i
		}
	}
	return len(block)
}

// enterHandler pushes an onError or catch list with the error in variable
// name, remembering the thread's own value of it to put back after.
func (r *run) enterHandler(th *Thread, block dsl.BlockID, name string, info ErrorInfo) {
	th.Cursor = append(th.Cursor, Frame{Block: block, Saved: th.Vars[name]})
	e := map[string]any{"type": info.Type, "message": info.Message}
	if info.StepID != "" {
		e["step"] = string(info.StepID)
	}
	if info.Attempt > 0 {
		e["attempt"] = float64(info.Attempt)
	}
	if info.Data != "" {
		e["data"] = decodeJSON(json.RawMessage(info.Data))
	}
	r.setVar(th, name, e)
}

// popFrame leaves the top list of a thread's cursor; leaving an onError or
// catch list puts back the variable that held the error.
func (r *run) popFrame(th *Thread) {
	f := th.Cursor[len(th.Cursor)-1]
	th.Cursor = th.Cursor[:len(th.Cursor)-1]
	owner := r.def.Owner[f.Block]
	if owner == nil {
		return
	}
	name := ""
	if b := owner.Base(); b.OnError != nil && f.Block == b.OnErrorBlock {
		name = "error"
	} else if t, ok := owner.(*dsl.TryStep); ok && f.Block == t.Catch.Block {
		name = t.Catch.As
	}
	if name == "" {
		return
	}
	if f.Saved == nil {
		r.delVar(th, name)
	} else {
		r.setVar(th, name, decodeJSON(f.Saved))
	}
}

// activityFailed retries the activity a thread waits on or, after the last
// attempt, raises its error.
func (r *run) activityFailed(th *Thread, info ErrorInfo) error {
	p := th.Pending
	step, err := waitedAt[*dsl.ActivityStep](r, th, "activity")
	if err != nil {
		return err
	}
	r.cancelTimer(th)
	info.Attempt = p.Attempt
	info.StepID = step.ID
	r.history(HistoryEvent{Type: "TaskFailed", StepID: step.ID, Name: step.Activity, Data: mustJSON(info), Attempt: p.Attempt})
	if info.Retryable {
		if pol := r.retryPolicy(step.Activity); pol != nil && p.Attempt < pol.MaxAttempts {
			delay := pol.Delay(p.Attempt - 1)
			if pol.RetryTimeout <= 0 || r.now.Add(delay).Sub(p.FirstAttempt) <= pol.RetryTimeout {
				due := r.now.Add(delay)
				timer := r.newTimer(th, due)
				th.Pending = &Pending{Kind: WaitRetry, StepID: step.ID, Activity: step.Activity, Attempt: p.Attempt,
					FirstAttempt: p.FirstAttempt, TimerID: timer, Deadline: &due}
				return nil
			}
		}
	}
	th.Pending = nil
	info.Retryable = false
	r.raise(th, info)
	return nil
}

func (r *run) retryPolicy(activity string) *dsl.RetryPolicy {
	if o := r.def.Activities[activity]; o != nil {
		return o.Retry
	}
	return nil
}

// failInstance ends the instance as Failed; its output is the ErrorInfo.
func (r *run) failInstance(info ErrorInfo) {
	if info.Attempt > 0 {
		if a, ok := r.def.ByID[info.StepID].(*dsl.ActivityStep); ok {
			info.Message = fmt.Sprintf("step %s: activity %s failed after %d attempt(s): %s", info.StepID, a.Activity, info.Attempt, info.Message)
		}
	}
	info.Retryable = false
	r.stopAll()
	r.st.Status = StatusFailed
	r.st.Output = mustJSON(info)
	r.history(HistoryEvent{Type: "ExecutionFailed", StepID: info.StepID, Data: r.st.Output})
}

func (r *run) exprError(step dsl.Step, err error) ErrorInfo {
	return ErrorInfo{Type: ErrTypeExpression, Message: fmt.Sprintf("step %s: %v", step.Base().ID, err), StepID: step.Base().ID}
}
