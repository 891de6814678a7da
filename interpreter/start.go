package interpreter

import (
	"context"
	"slices"
	"time"
)

// CreateInstance starts an instance with its first transition computed on
// the way in, as Temporal's eager workflow start does: the store writes
// the instance as that transition leaves it (Running, its first activity
// queued, its first timer set) in the one script and round trip that
// creates it, so no engine reads, steps and commits a start item. The
// state goes into this engine's cache and its timers into the engine's
// plan, as if a round had committed it.
//
// A start this way cannot take is created as a start item, as
// Store.CreateInstance does, for an engine to step: its definition does not
// load, its first step fails to compute, or it starts or stops a child
// (those run after a commit, see afterCommit). Errors are the store's:
// ErrAlreadyRunning when the id is Pending, Running or Suspended. A start
// also goes the engine's way when as many first steps as the machine has
// cores are being computed already.
func (e *Engine) CreateInstance(ctx context.Context, ni NewInstance) error {
	st := ni.State
	if st == nil || ni.First != nil || ni.Start.Kind != EvStart {
		return e.store.CreateInstance(ctx, ni)
	}
	def, err := e.cat.Get(ctx, st.Name, st.DefHash)
	if err != nil {
		return e.store.CreateInstance(ctx, ni)
	}
	// As many first steps at once as there are cores: the engine's own
	// rounds bound how many expressions run at once, and so must the
	// starts (each evaluation may hold up to about 100 MB, see dsl's
	// limits). A start that finds none free goes the engine's way.
	select {
	case e.eager <- struct{}{}:
	default:
		return e.store.CreateInstance(ctx, ni)
	}
	deadline, bounded := ctx.Deadline()
	left := time.Until(deadline)
	began := e.opts.Clock()
	t, err := e.in.StepOnto(def, e.latestFor(ctx, def), st, ni.Start)
	<-e.eager
	if err != nil || t == nil || slices.ContainsFunc(t.Commands, runsAfterCommit) {
		return e.store.CreateInstance(ctx, ni)
	}
	// A first step that computed for long (its expressions may take up to
	// about a second each) does not eat the store call's time: the call
	// gets the time the caller gave, anew.
	if bounded && time.Until(deadline) < left/2 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), left)
		defer cancel()
	}
	defer e.locks.lock(st.ID)()
	ni.First = t
	if err := e.store.CreateInstance(ctx, ni); err != nil {
		return err
	}
	e.observe(&chain{id: st.ID, st: st, items: []WorkItem{{Instance: st.ID, Event: ni.Start}}}, t, began, e.opts.Clock())
	e.noteTimers(e.store.PartitionOf(st.ID), t.Commands)
	e.cache.put(t.State, def)
	return nil
}
