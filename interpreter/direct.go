package interpreter

import (
	"context"
	"errors"
)

// ApplyTaskOutcome applies an activity task's completion or failure (ev,
// of kind EvCompleted or EvFailed) at once, in the caller's goroutine,
// instead of queuing it as a work item for some engine to read: the
// commit acknowledges the task itself (Transition.TaskAck). An activity
// runtime in the engine's process calls it, which saves the work item's
// write, its read and, usually, the state's load (see stateCache): two
// round trips per task.
//
// It reports whether the outcome is applied (or was already: the task had
// been acknowledged, by the runtime that took it over after its lease).
// On false nothing is written and the caller finishes the task the usual
// way (Store CompleteTask/FailTask), which is always correct: the
// instance moved on under it three times in a row, the outcome took no
// transition (the instance ended meanwhile, say), or the store failed.
func (e *Engine) ApplyTaskOutcome(ctx context.Context, ref TaskRef, ev Event) bool {
	if ev.Kind != EvCompleted && ev.Kind != EvFailed {
		return false
	}
	// Not at the same time as the engine's read loops apply an item of the
	// instance (see Process): they would conflict.
	defer e.locks.lock(ref.Instance)()
	for range 3 {
		st, def := e.cache.get(ref.Instance)
		if st == nil {
			states, err := e.store.LoadStates(ctx, []InstanceID{ref.Instance})
			if err != nil || states[0] == nil {
				return false
			}
			st = states[0]
			if def, err = e.cat.Get(ctx, st.Name, st.DefHash); err != nil {
				return false
			}
		}
		tr, err := e.in.Step(def, st, ev)
		if err != nil || tr == nil {
			return false
		}
		tr.TaskAck = &ref
		after := takeAfterCommit([]*Transition{tr})
		errs, err := e.store.Commit(ctx, []*Transition{tr})
		if err != nil {
			return false
		}
		switch {
		case errs[0] == nil:
			e.noteTimers(ref.Partition, tr.Commands)
			e.afterCommit(ctx, tr, after, 0)
			e.cache.put(tr.State, def)
			return true
		case errors.Is(errs[0], ErrDuplicate):
			return true
		case errors.Is(errs[0], ErrConflict):
			e.cache.drop(ref.Instance) // load, then try again
		default:
			e.cache.drop(ref.Instance)
			return false
		}
	}
	return false
}
