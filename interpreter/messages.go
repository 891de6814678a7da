package interpreter

import (
	"context"
	"encoding/json"
	"time"
)

// RaiseEvent delivers an external event to instance id, as
// Store.RaiseEvent does, but applies it at once when this engine holds the
// instance's state (it committed the instance last, see stateCache): the
// event's transition is committed in the one round trip that would have
// queued it, and no engine reads, steps and commits a work item for it.
// Raises arriving together share a round with each other and with the
// task outcomes handed over meanwhile (see outcomeGroups).
//
// The commit numbers the event after the messages the store has accepted
// for the instance, and fails unless all of them are applied already
// (Transition.Message), so messages keep the order the store accepted
// them in. When the state is not cached, the instance has not started
// or has ended, or the commit conflicts (another engine moved the
// instance), the event is queued the usual way. Errors are the store's:
// ErrNotFound, ErrFinished, or a failure of the commit (the event may
// then have been applied, as after any store call that did not answer).
func (e *Engine) RaiseEvent(ctx context.Context, id InstanceID, name string, data json.RawMessage, now time.Time) error {
	return e.deliver(ctx, id, Event{Kind: EvRaised, Time: now, Name: name, Data: data},
		func() error { return e.store.RaiseEvent(ctx, id, name, data, now) })
}

// SendControl delivers a terminate, suspend or resume (ev.Kind) to
// instance id as Store.SendControl does, applying it at once as RaiseEvent
// applies an event, under the same conditions.
func (e *Engine) SendControl(ctx context.Context, id InstanceID, ev Event) error {
	queue := func() error { return e.store.SendControl(ctx, id, ev) }
	switch ev.Kind {
	case EvTerminate, EvSuspend, EvResume:
		return e.deliver(ctx, id, ev, queue)
	}
	return queue() // the store says what is wrong with it
}

// deliver applies client message ev to instance id in the group commit,
// or calls queue when it cannot (see RaiseEvent).
func (e *Engine) deliver(ctx context.Context, id InstanceID, ev Event, queue func() error) error {
	if st, _ := e.cache.get(id); st == nil || len(st.Early) > 0 || st.Status == StatusPending || st.Status.Terminal() {
		return queue()
	}
	// The round may run for other callers too (a group): it gets this
	// call's deadline, not its cancellation, which would fail them all.
	gctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		gctx, cancel = context.WithDeadline(gctx, d)
		defer cancel()
	}
	c := &chain{id: id, message: true, items: []WorkItem{{Partition: e.store.PartitionOf(id), Instance: id, Event: ev}}}
	e.applyDirect(gctx, c)
	switch {
	case c.applied:
		return nil
	case c.err != nil:
		return c.err
	}
	return queue()
}

// applyDirect applies c, an item handed over in process, in the group
// commit (outcomeGroups) and returns once it is settled.
func (e *Engine) applyDirect(ctx context.Context, c *chain) {
	switch g, lead := e.outcomes.join(ctx, c); {
	case g == nil:
		e.run(ctx, []*chain{c})
	case lead:
		e.applyGroups(g)
	default:
		<-g.done
		if c.alone { // it rode on an outcome that could not carry it
			c.alone = false
			e.run(ctx, []*chain{c})
		}
	}
}
