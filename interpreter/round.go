package interpreter

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// This file is the engine's round: how a batch of work items (or one
// activity outcome handed over in process) becomes committed transitions.
//
// Process loops over rounds. Each round, under the instances' locks:
//
//  1. resolve: every chain without a state gets one: the state its start
//     item carries, the cached one, else the stored one (one LoadStates for
//     all of them);
//  2. step: the interpreter computes the next transition of every chain;
//     items that take none are dropped;
//  3. commit: all the round's transitions in one Store.Commit;
//  4. settle: each chain moves on by what its commit answered: the next
//     item (applied), the next item after a reload (a duplicate), the same
//     item after a reload (a conflict), or nothing (another failure: the
//     work stays pending; when the store was unavailable this engine
//     applies it again soon, see retry.go, else it is reclaimed after the
//     lease).
//
// An instance with several items takes one round per item, each computed on
// the state the previous one committed. Committing an instance's next
// transition in the same round as the one before would be wrong: if the
// first lost a race to another engine, the second, computed on top of it,
// could still pass the revision check (the other engine moved the instance
// by one revision too) and overwrite that engine's transition, losing its
// event and applying this engine's first item twice.

// maxLoads bounds the loads of an instance without a commit in between: a
// chain that conflicted this often in a row is left for later.
const (
	maxLoads       = 8 // work items: reclaimed after the lease
	maxLoadsDirect = 3 // a task outcome: its runtime finishes it the usual way
)

// source says where a chain's state comes from, and so what it may do.
type source uint8

const (
	// unresolved: no state yet; the start item or the cache may give one.
	unresolved source = iota
	// mustLoad: no state yet, and only the store's will do (a shortcut
	// state was too old, or the instance moved under a commit).
	mustLoad
	// fromStart: the state the start item carries (Event.Init).
	fromStart
	// fromCache: the state this engine committed last (see stateCache).
	fromCache
	// fromStore: loaded after the item was read, or just committed.
	fromStore
)

// shortcut reports whether the state came from the start item or the
// cache, and so may be older than the item: it may compute a transition
// (the commit's revision and created-time check catches a stale one) but
// may not drop an item.
func (s source) shortcut() bool { return s == fromStart || s == fromCache }

// chain is the work of one instance within a Process (or ApplyTaskOutcome)
// call.
type chain struct {
	id    InstanceID
	def   *dsl.Workflow
	st    *State // the state to apply the next item to; nil unless src >= fromStart
	src   source
	items []WorkItem // not applied yet, in arrival order
	loads int        // loads since the last commit of this instance
	// task is set for an activity outcome handed over in process: its one
	// item is no work item, and its commit acknowledges the task instead.
	task *TaskRef
	// message is set for a client message the API handed over in process
	// (Engine.RaiseEvent): its one item is no work item either, and its
	// commit numbers it (Transition.Message). It gets one commit: after
	// a conflict, or any failure, the caller queues it the usual way.
	message bool
	// err is why a message chain's commit failed (nil: it conflicted, or
	// never got as far).
	err error
	// applied: the last item settled was applied, by this engine or
	// (a duplicate) another.
	applied bool
	// rider, on a task outcome's chain, is a client message for the same
	// instance that joined the same group (see outcomeGroups.join): its
	// event is applied on top of the outcome's and the two are committed
	// as one transition (fold). carried: the transition of this round
	// carries it. alone, on a rider, means it was not carried (it could
	// not be folded, or the commit wrote nothing) and its caller applies
	// it on its own once the group is done; a rider neither carried nor
	// alone (the round failed before its commit) goes its caller's usual
	// way, as the failed outcome does.
	rider   *chain
	carried bool
	alone   bool
}

// reset forgets the chain's state: the next round loads it.
func (c *chain) reset() { c.st, c.src = nil, mustLoad }

// direct reports whether the chain's item was handed over in process (a
// task outcome or a client message) rather than read as a work item: it
// has nothing to acknowledge, and what it does not apply goes back to its
// caller, not to the engine's retries.
func (c *chain) direct() bool { return c.task != nil || c.message }

// round collects what one round does besides its transitions.
type round struct {
	began  time.Time     // when the round began: a transition's duration runs from here
	acks   []WorkItem    // items that take no transition
	ts     []*Transition // one per owner
	owners []*chain
	reload bool // some chain must load before its items can run
}

// drop gives up the chain's first item: a work item is acknowledged, a task
// outcome is declined (ApplyTaskOutcome returns false; the runtime
// finishes the task through the store instead).
func (r *round) drop(c *chain) {
	if !c.direct() {
		r.acks = append(r.acks, c.items[0])
		c.items = c.items[1:]
		return
	}
	c.items = nil
}

// dropAll gives up every item of the chain.
func (r *round) dropAll(c *chain) {
	for len(c.items) > 0 {
		r.drop(c)
	}
}

// Process applies work items, in rounds (see the top of this file).
func (e *Engine) Process(ctx context.Context, items []WorkItem) {
	var active []*chain
	byID := map[InstanceID]*chain{}
	for _, it := range items {
		c := byID[it.Instance]
		if c == nil {
			c = &chain{id: it.Instance}
			byID[it.Instance] = c
			active = append(active, c)
		}
		c.items = append(c.items, it)
	}
	if left := e.run(ctx, active); len(left) > 0 {
		e.retry.add(left, e.log)
	}
}

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
// instance moved on under it at each of three loads, the outcome took no
// transition (the instance ended meanwhile, say), or the store failed.
func (e *Engine) ApplyTaskOutcome(ctx context.Context, ref TaskRef, ev Event) bool {
	if ev.Kind != EvCompleted && ev.Kind != EvFailed {
		return false
	}
	c := &chain{id: ref.Instance, task: &ref,
		items: []WorkItem{{Partition: ref.Partition, Instance: ref.Instance, Event: ev}}}
	// On a failure the caller finishes the task itself.
	e.applyDirect(ctx, c)
	return c.applied
}

// run takes rounds until no chain has work left, or the store fails; it
// returns the work items left pending then (none of an in-process task
// outcome's chain).
func (e *Engine) run(ctx context.Context, active []*chain) []WorkItem {
	for len(active) > 0 {
		next, ok := e.round(ctx, active)
		if !ok {
			var left []WorkItem
			for _, c := range active {
				if !c.direct() {
					left = append(left, c.items...)
				}
			}
			return left
		}
		active = next
	}
	return nil
}

// round takes one round and returns the chains with work left; false when
// the store failed and the rest stays pending.
//
// One engine applies one transition of an instance at a time: its read
// loops and the activity runtime in its process (ApplyTaskOutcome) would
// otherwise race each other into revision conflicts, each a failed commit
// and a load.
func (e *Engine) round(ctx context.Context, active []*chain) ([]*chain, bool) {
	ids := make([]InstanceID, len(active))
	for i, c := range active {
		ids[i] = c.id
	}
	defer e.locks.lock(ids...)()

	r := round{began: e.opts.Clock()}
	if !e.resolve(ctx, &r, active) {
		return nil, false
	}
	e.probeWatched(ctx, active)
	e.step(ctx, &r, active)
	if len(r.acks) > 0 {
		err := e.store.AckWork(ctx, r.acks)
		e.obs.OnStoreCall("ack", err)
		if err != nil {
			e.log.Warn("acknowledging work failed", "err", err)
		}
	}
	if len(r.ts) > 0 {
		after := takeAfterCommit(r.ts) // call steps' commands (see afterCommit)
		errs, err := e.store.Commit(ctx, r.ts)
		e.obs.OnStoreCall("commit", err)
		if err != nil {
			e.log.Warn("commit failed; the work is retried", "err", err)
			for _, c := range r.owners {
				if c.message {
					c.err = err // it may have been applied: no queuing it again
				}
				if c.carried {
					c.rider.err, c.rider.items = err, nil
					c.carried, c.rider = false, nil
				}
			}
			return nil, false
		}
		committed := e.opts.Clock()
		for k, err := range errs {
			if err == nil {
				e.observe(r.owners[k], r.ts[k], r.began, committed) // a fold is one transition
			}
			e.settle(ctx, r.owners[k], r.ts[k], after, k, err)
		}
	} else if !r.reload {
		return nil, true
	}
	return e.remaining(active), true
}

// resolve gives every chain without a state one. It returns false when the
// store failed to load them.
func (e *Engine) resolve(ctx context.Context, r *round, active []*chain) bool {
	var load []*chain
	for _, c := range active {
		if c.st == nil && !e.shortcut(ctx, c) {
			load = append(load, c)
		}
	}
	if len(load) == 0 {
		return true
	}
	ids := make([]InstanceID, len(load))
	for i, c := range load {
		ids[i] = c.id
	}
	states, err := e.store.LoadStates(ctx, ids)
	e.obs.OnStoreCall("load", err)
	if err != nil {
		e.log.Warn("loading instances failed; the work is retried", "err", err)
		return false
	}
	for i, c := range load {
		c.loads++
		e.loaded(ctx, r, c, states[i])
	}
	return true
}

// shortcut gives the chain a state without a load when it may take one: a
// start item's own (a start item never reads the cache: it may begin a new
// incarnation of an id whose earlier one is cached), else the cached one.
func (e *Engine) shortcut(ctx context.Context, c *chain) bool {
	if c.src == mustLoad {
		return false
	}
	var st *State
	var def *dsl.Workflow
	src := fromCache
	if first := c.items[0]; first.Event.Kind == EvStart {
		src = fromStart
		if st = InitialState(c.id, first.Event); st != nil {
			def = c.def
			if def == nil || def.Hash != st.DefHash {
				def, _ = e.cat.Get(ctx, st.Name, st.DefHash) // an error shows on the load path
			}
		}
	} else {
		st, def = e.cache.get(c.id)
	}
	if st == nil || def == nil {
		return false
	}
	c.st, c.def, c.src = st, def, src
	return true
}

// loaded takes a state the store returned (nil: the instance is gone) and
// its definition.
func (e *Engine) loaded(ctx context.Context, r *round, c *chain, st *State) {
	if st == nil {
		r.dropAll(c) // purged or never created
		return
	}
	if c.def == nil || c.def.Hash != st.DefHash {
		def, err := e.cat.Get(ctx, st.Name, st.DefHash)
		switch {
		case err == nil:
			c.def = def
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrBrokenDefinition):
			if !c.direct() {
				e.log.Error("instance's definition is gone; dropping its work", "instance", c.id, "err", err)
			}
			r.dropAll(c)
			return
		default:
			// The store did not answer: the items stay pending, and
			// this engine applies them again soon (retry.go).
			e.log.Warn("loading the instance's definition failed; its work is retried", "instance", c.id, "err", err)
			if !c.direct() {
				e.retry.add(c.items, e.log)
			}
			c.items = nil
			return
		}
	}
	c.st, c.src = st, fromStore
}

// step computes the next transition of every chain that has a state and
// work, dropping the items that take none.
func (e *Engine) step(ctx context.Context, r *round, active []*chain) {
	for _, c := range active {
		for len(c.items) > 0 && c.st != nil {
			it := c.items[0]
			if c.message {
				// Numbered next: the commit checks that the store has
				// numbered no message since (none waits before it).
				it.Event.Seq = c.st.MsgSeq + 1
			}
			tr, err := e.in.StepOnto(c.def, e.latestFor(ctx, c.def), c.st, it.Event)
			if err == nil && tr != nil {
				switch {
				case c.task != nil:
					tr.TaskAck = c.task
				case c.message:
					tr.Message = it.Event.Seq
				default:
					tr.WorkID = it.ID
				}
				if c.rider != nil {
					tr = e.fold(ctx, c, tr)
				}
				r.ts = append(r.ts, tr)
				r.owners = append(r.owners, c)
				break
			}
			if c.src.shortcut() {
				// Perhaps the item needs a newer state than this one (a
				// timer another engine set, say): ask the stored state
				// before dropping the item.
				e.cache.drop(c.id)
				c.reset()
				r.reload = true
				break
			}
			if err != nil && !c.direct() {
				e.log.Error("transition failed; dropping work item", "instance", c.id, "event", it.Event.Kind, "err", err)
			}
			r.drop(c)
		}
		if c.rider != nil && !c.carried && len(c.items) == 0 {
			// The outcome takes no transition: the message goes alone.
			c.rider.alone, c.rider = true, nil
		}
	}
}

// fold applies the event of c's rider on top of tr, the transition of c's
// task outcome, and returns the two as one transition, which acknowledges
// the task and numbers the message; c.carried says it did. When the
// rider's event takes no transition of its own there, or either transition
// starts or stops a child (those run after their own commit), it returns
// tr, and the rider goes alone.
func (e *Engine) fold(ctx context.Context, c *chain, tr *Transition) *Transition {
	rd := c.rider
	ev := rd.items[0].Event
	ev.Seq = tr.State.MsgSeq + 1
	t2, err := e.in.StepOnto(c.def, e.latestFor(ctx, c.def), tr.State, ev)
	if err != nil || t2 == nil || slices.ContainsFunc(tr.Commands, runsAfterCommit) || slices.ContainsFunc(t2.Commands, runsAfterCommit) {
		rd.alone, c.rider = true, nil
		return tr
	}
	rd.items[0].Event.Seq = ev.Seq
	c.carried = true
	t2.FromRevision = tr.FromRevision
	t2.State.Revision = tr.State.Revision
	t2.Commands = foldCommands(tr.Commands, t2.Commands)
	t2.History = bounded(append(slices.Clip(tr.History), t2.History...), ev.Time.UTC())
	t2.StatusChanged = t2.StatusChanged || tr.StatusChanged
	t2.TaskAck, t2.Message = tr.TaskAck, ev.Seq
	return t2
}

// foldCommands is the commands of a transition followed by those of the
// next one computed on top of it, less each timer the first started and
// the second cancelled: it never reaches the store.
func foldCommands(first, second []Command) []Command {
	var gone []string
	for _, d := range second {
		if ct, ok := d.(*CancelTimer); ok && slices.ContainsFunc(first, func(c Command) bool {
			st, ok := c.(*StartTimer)
			return ok && st.ID == ct.ID
		}) {
			gone = append(gone, ct.ID)
		}
	}
	if len(gone) == 0 {
		return append(slices.Clip(first), second...)
	}
	out := make([]Command, 0, len(first)+len(second)-2*len(gone))
	for _, c := range slices.Concat(first, second) {
		switch c := c.(type) {
		case *StartTimer:
			if slices.Contains(gone, c.ID) {
				continue
			}
		case *CancelTimer:
			if slices.Contains(gone, c.ID) {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// settle moves a chain on by what the commit of its transition t answered.
func (e *Engine) settle(ctx context.Context, c *chain, t *Transition, after [][]Command, k int, err error) {
	if c.carried {
		rd := c.rider
		c.carried, c.rider = false, nil
		switch {
		case err == nil:
			rd.applied, rd.items = true, nil
		case errors.Is(err, ErrConflict) || errors.Is(err, ErrDuplicate):
			rd.alone = true // nothing was written
		default:
			rd.err, rd.items = err, nil // it may have been applied
		}
	}
	switch {
	case err == nil:
		e.noteTimers(c.items[0].Partition, t.Commands)
		e.afterCommit(ctx, t, after, k)
		c.st, c.src = t.State, fromStore
		e.cache.put(c.st, c.def)
		c.items = c.items[1:]
		c.loads = 0 // progress: count only conflicts in a row
		c.applied = true
	case c.message:
		// One try: the caller queues the message (a conflict wrote
		// nothing) or answers the failure.
		if !errors.Is(err, ErrConflict) {
			c.err = err
		}
		c.items = nil
		e.cache.drop(c.id)
	case errors.Is(err, ErrDuplicate):
		// Applied by another engine already: drop it, and read what that
		// engine made of the instance.
		c.items = c.items[1:]
		c.reset()
		e.cache.drop(c.id)
		c.applied = true
	case errors.Is(err, ErrConflict):
		c.reset() // reload, then apply the same item again
		e.cache.drop(c.id)
	case errors.Is(err, ErrUnavailable) && c.task == nil:
		// Its node failed (one master of a cluster, say) while the
		// others committed: this engine applies the items again soon
		// (retry.go).
		e.log.Warn("commit of one transition failed; its work is retried", "instance", c.id, "err", err)
		e.retry.add(c.items, e.log)
		c.items = nil
		e.cache.drop(c.id)
	default:
		e.log.Warn("commit of one transition failed; its work stays pending", "instance", c.id, "err", err)
		c.items = nil
		e.cache.drop(c.id)
	}
}

// remaining returns the chains with work left, leaving out those that
// conflicted too often in a row.
func (e *Engine) remaining(active []*chain) []*chain {
	next := active[:0]
	for _, c := range active {
		switch {
		case len(c.items) == 0:
		case c.direct() && c.st == nil && c.loads == maxLoadsDirect:
		case !c.direct() && c.st == nil && c.loads == maxLoads:
			e.log.Warn("giving up on a contended instance for now; its work will be reclaimed", "instance", c.id, "items", len(c.items))
		default:
			next = append(next, c)
		}
	}
	return next
}

// observe tells the observer of the transition t of chain c, committed at
// committed, and logs the end of an instance that failed. It runs before
// settle, while c.st is still the state t was computed from.
func (e *Engine) observe(c *chain, t *Transition, began, committed time.Time) {
	it, st := c.items[0], t.State
	info := TransitionInfo{
		Instance: st.ID, Workflow: st.Name, Step: st.CurrentStep(), Event: it.Event.Kind,
		From: c.st.Status, To: st.Status, Began: began, Duration: committed.Sub(began),
		Trace: st.TraceParent,
	}
	if it.Event.Kind == EvStart {
		info.From = StatusPending
	}
	if st.Status == StatusFailed && !info.From.Terminal() {
		var fail ErrorInfo
		_ = json.Unmarshal(st.Output, &fail) // a Failed state's output is its ErrorInfo
		if fail.StepID != "" {
			info.Step = fail.StepID
		}
		e.log.Error("instance failed", "instance", st.ID, "workflow", st.Name, "step", info.Step,
			"error_type", fail.Type, "error", fail.Message)
	}
	e.obs.OnTransition(info)
	if it.Event.Kind == EvTimer {
		if due, ok := timerDue(c.st, it.Event.Timer); ok {
			e.obs.OnTimerFired(it.Event.Time.Sub(due))
		}
	}
}

// timerDue returns when the timer id of st was due: a wait's, a retry's,
// a yield's, a call's check (the thread's Pending) or the workflow's
// timeout.
func timerDue(st *State, id string) (time.Time, bool) {
	if id == "" {
		return time.Time{}, false
	}
	if p := st.Pending; p != nil && p.TimerID == id && p.Deadline != nil {
		return *p.Deadline, true
	}
	for i := range st.Threads {
		if p := st.Threads[i].Pending; p != nil && p.TimerID == id && p.Deadline != nil {
			return *p.Deadline, true
		}
	}
	if st.Timeout != nil && st.Timeout.ID == id {
		return st.Timeout.Due, true
	}
	return time.Time{}, false
}
