package interpreter

// Call steps: the child instance started, checked on while the parent
// waits, and its end applied to the parent.

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// Checks that a called child exists: the first after childCheck, each
// next one twice as late, at most childCheckMax apart.
const (
	childCheck    = 10 * time.Second
	childCheckMax = 10 * time.Minute
)

// call starts the child instance a call step waits for; its id is the
// parent's and the parent's next sequence number.
func (r *run) call(th *Thread, s *dsl.CallStep) {
	r.st.Seq++
	p := &Pending{Kind: WaitChild, StepID: s.ID, Child: InstanceID(fmt.Sprintf("%s:%d", r.st.ID, r.st.Seq))}
	r.history(HistoryEvent{Type: "ChildScheduled", StepID: s.ID, Name: string(p.Child)})
	r.startChild(th, s, p)
}

// startChild asks for the child a call step waits for, and for a check
// later.
func (r *run) startChild(th *Thread, s *dsl.CallStep, p *Pending) {
	input, ok := eval(r, th, s, s.Input)
	if !ok {
		return
	}
	raw := mustJSON(input)
	if string(raw) == "null" {
		raw = nil
	}
	r.command(&StartChild{ID: p.Child, Parent: r.st.ID, Workflow: s.Workflow, Input: raw, Trace: r.st.TraceParent})
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

// checkChild asks again for the child a call step waits for, when its
// check timer fires without news of it.
func (r *run) checkChild(th *Thread, p *Pending) error {
	call, err := waitedAt[*dsl.CallStep](r, th, "call")
	if err != nil {
		return err
	}
	p.TimerID, p.Deadline = "", nil
	r.startChild(th, call, p)
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
	call, err := waitedAt[*dsl.CallStep](r, th, "call")
	if err != nil {
		return false, err
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
