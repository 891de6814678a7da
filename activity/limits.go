package activity

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// This file is admission: which slots an attempt needs before it runs.
// The runtime leases up to Concurrency + HTTPConcurrency tasks; each then
// waits, queued, for its activity's own limit (`concurrency:`, per process
// or global), then for a slot of its class: http bindings wait on the
// network, so they have many slots; Go handlers and expr bindings use the
// CPU, so they have few.

// Defaults of the two classes' limits.
const defaultHTTPConcurrency = 256

func defaultConcurrency() int { return max(8, 2*runtime.GOMAXPROCS(0)) }

// SlotStore is a TaskStore that keeps counting semaphores shared by all
// processes, for activities whose `concurrency:` has scope global;
// redisstore's Store is one. A slot is held under a lease: one whose
// holder stops renewing it (it crashed) is free again once the lease has
// passed. Over a store without it, a global limit applies per process.
type SlotStore interface {
	// AcquireSlot takes one of limit slots of name for holder, unless
	// limit are held already; it reports whether it did (true, too, when
	// holder holds one already: its lease restarts).
	AcquireSlot(ctx context.Context, name, holder string, limit int, lease time.Duration, now time.Time) (bool, error)
	// RenewSlots restarts the leases of the slots holders[i] holds of
	// names[i]; errs[i] is that one's outcome, interpreter.ErrNotFound
	// when its lease had expired and it was lost.
	RenewSlots(ctx context.Context, names, holders []string, lease time.Duration, now time.Time) (errs []error)
	// ReleaseSlot frees holder's slot of name (no error when it holds none).
	ReleaseSlot(ctx context.Context, name, holder string) error
}

// Slot names one held slot of a global semaphore.
type Slot struct{ Name, Holder string }

// sharedSlots returns the SlotStore in store (or in the store a Direct
// wraps), nil when there is none.
func sharedSlots(store TaskStore) SlotStore {
	if d, ok := store.(direct); ok {
		store = d.TaskStore
	}
	ss, _ := store.(SlotStore)
	return ss
}

// slotName is the semaphore of an activity's global limit: per workflow
// and activity, as activity names are the workflow's own.
func slotName(workflow, activity string) string { return workflow + "/" + activity }

// localLimit returns the process-wide semaphore of an activity limit
// (created on first use; a new definition with another limit gets its own).
func (r *Runtime) localLimit(workflow, activity string, limit int) chan struct{} {
	key := limitKey{workflow, activity, limit}
	r.mu.Lock()
	defer r.mu.Unlock()
	sem := r.limits[key]
	if sem == nil {
		sem = make(chan struct{}, limit)
		r.limits[key] = sem
	}
	return sem
}

type limitKey struct {
	workflow, activity string
	limit              int
}

// errNotAdmitted: the attempt was stopped (withdrawn, lease lost) or the
// runtime is shutting down while it waited for its slots.
var errNotAdmitted = errors.New("activity: stopped while waiting for a concurrency slot")

// admission is what an admitted attempt holds until it ends: a token of
// its activity's per-process limit, or its slot of a global one, and a
// token of its class. A value, not a closure per slot: admit runs for
// every attempt.
type admission struct {
	limit  chan struct{} // the per-process limit's semaphore, if it holds a token
	global SlotStore     // the store of the global slot it holds, if any
	class  chan struct{} // its class's semaphore, if it holds a token
	h      *held
}

// free gives back what a holds, its class's token first.
func (a *admission) free(r *Runtime) {
	if a.class != nil {
		<-a.class
	}
	if a.global != nil {
		r.freeGlobal(a.global, a.h)
	}
	if a.limit != nil {
		<-a.limit
	}
}

// take waits for a token of sem; errNotAdmitted when stop or quit ended
// first, and then it holds none.
func take(stop, quit context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}: // free: no need to make stop's Done channel
		if stop.Err() == nil && quit.Err() == nil {
			return nil
		}
		<-sem
		return errNotAdmitted
	default:
	}
	select {
	case sem <- struct{}{}:
		// select picks at random among ready cases: a task must not
		// start after the runtime began to stop.
		if stop.Err() == nil && quit.Err() == nil {
			return nil
		}
		<-sem
	case <-stop.Done():
	case <-quit.Done():
	}
	return errNotAdmitted
}

// admit waits until held task h may run: its activity's own limit, then a
// slot of its binding's class. It returns what to free when the attempt
// ends. It gives up when stop (the attempt's context) or quit (the
// runtime's Run context) ends; the caller tells which.
func (r *Runtime) admit(stop, quit context.Context, h *held, opts *dsl.ActivityOptions) (admission, error) {
	a := admission{h: h}
	s := &h.task.Schedule
	if opts != nil && opts.Concurrency != nil {
		c := opts.Concurrency
		if ss := r.shared; c.Global && ss != nil {
			if err := r.globalSlot(stop, quit, ss, h, slotName(s.Workflow, s.Activity), c.Limit); err != nil {
				return admission{}, err
			}
			a.global = ss
		} else {
			sem := r.localLimit(s.Workflow, s.Activity, c.Limit)
			if err := take(stop, quit, sem); err != nil {
				return admission{}, err
			}
			a.limit = sem
		}
	}
	class := r.cpu
	if opts != nil && opts.Binding != nil && opts.Binding.Kind == dsl.BindHTTP {
		class = r.httpSlots
	}
	if err := take(stop, quit, class); err != nil {
		a.free(r)
		return admission{}, err
	}
	a.class = class
	r.mu.Lock()
	h.running = true
	r.mu.Unlock()
	return a, nil
}

// globalSlot polls the shared semaphore until it gives h a slot: with a
// jittered backoff from 20 ms to 1 s, so that waiting runtimes neither
// flood the store nor sleep long past a freed slot.
func (r *Runtime) globalSlot(stop, quit context.Context, ss SlotStore, h *held, name string, limit int) error {
	holder := r.opts.Consumer + "/" + string(h.task.Ref.Instance) + "/" + h.task.Ref.TaskID
	backoff := 20 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(stop, 5*time.Second)
		ok, err := ss.AcquireSlot(ctx, name, holder, limit, r.opts.Lease, r.opts.Clock())
		cancel()
		if ok {
			r.mu.Lock()
			h.slot = &Slot{Name: name, Holder: holder}
			h.slotRenewed = r.opts.Clock()
			r.mu.Unlock()
			return nil
		}
		if err != nil && stop.Err() == nil {
			r.log.Warn("taking a concurrency slot failed; retrying", "slot", name, "err", err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(wait):
		case <-stop.Done():
			return errNotAdmitted
		case <-quit.Done():
			return errNotAdmitted
		}
		backoff = min(backoff*2, time.Second)
	}
}

// freeGlobal frees h's global slot; if that fails, its lease frees it.
func (r *Runtime) freeGlobal(ss SlotStore, h *held) {
	r.mu.Lock()
	slot := h.slot
	h.slot = nil
	r.mu.Unlock()
	if slot == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ss.ReleaseSlot(ctx, slot.Name, slot.Holder); err != nil {
		r.log.Warn("freeing a concurrency slot failed; it is free again when its lease expires", "slot", slot.Name, "err", err)
	}
}

// renewSlots restarts the leases of the global slots held at least age
// ago; one round trip for all of them.
func (r *Runtime) renewSlots(ctx context.Context, age time.Duration) {
	ss := r.shared
	if ss == nil {
		return
	}
	now := r.opts.Clock()
	var due []*held
	var slots []Slot
	var names, holders []string
	r.mu.Lock()
	for _, h := range r.held {
		if h.slot != nil && now.Sub(h.slotRenewed) >= age {
			due, slots = append(due, h), append(slots, *h.slot)
			names, holders = append(names, h.slot.Name), append(holders, h.slot.Holder)
		}
	}
	r.mu.Unlock()
	if len(slots) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, max(age, time.Millisecond))
	errs := ss.RenewSlots(cctx, names, holders, r.opts.Lease, now)
	cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, h := range due {
		switch err := errs[i]; {
		case err == nil:
			h.slotRenewed = now
		case errors.Is(err, interpreter.ErrNotFound):
			// The lease passed unrenewed (the store was away for that
			// long): the attempt runs on, and the limit may be exceeded
			// until it ends.
			r.log.Warn("a concurrency slot's lease expired while its attempt ran", "slot", slots[i].Name, "task", h.task.Ref.TaskID)
			h.slotRenewed = now
		default:
			r.log.Warn("renewing a concurrency slot failed", "slot", slots[i].Name, "err", err)
		}
	}
}
