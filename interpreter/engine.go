package interpreter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// EngineOptions configure an Engine. Zero values take the defaults.
type EngineOptions struct {
	// Consumer names this engine in the work streams' consumer group; it
	// must be unique among live engines. Default: host-pid-random.
	Consumer    string
	Interpreter *Interpreter
	Clock       func() time.Time
	Logger      *slog.Logger
	// Batch is the most work items one read takes (default 128).
	Batch int
	// Block is how long one read waits for work (default 2s).
	Block time.Duration
	// Workers is the number of read loops; loop i serves the partitions p
	// with p % Workers == i, so one engine applies a partition's work in
	// order (default 2).
	Workers int
	// TimerTick is how often due timers are checked (default 50ms);
	// TimerSweep is how often every partition is checked even when this
	// engine knows of no timer due there (default 1s).
	TimerTick  time.Duration
	TimerSweep time.Duration
	// ReclaimAfter is how long a work item may stay unacknowledged before
	// another engine takes it over (default 30s).
	ReclaimAfter time.Duration
	// TrimEvery is how often acknowledged work items are dropped from the
	// store in bulk (default 5s).
	TrimEvery time.Duration
	// CacheSize is how many instance states the engine keeps after
	// committing them, to apply their next work item without loading them
	// (default 10,000; negative: none). See stateCache.
	CacheSize int
}

// Engine reads work items from a Store, runs the interpreter and commits
// each transition. Any number of engines may share one store.
type Engine struct {
	store Store
	cat   *Catalog
	in    *Interpreter
	opts  EngineOptions
	log   *slog.Logger

	cache *stateCache
	locks instanceLocks

	mu      sync.Mutex
	nextDue map[int]time.Time // earliest timer this engine knows of, per partition
}

// NewEngine returns an Engine; Run starts it.
func NewEngine(store Store, cat *Catalog, opts EngineOptions) *Engine {
	if opts.Consumer == "" {
		opts.Consumer = DefaultConsumer()
	}
	if opts.Interpreter == nil {
		opts.Interpreter = New(Options{})
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Batch <= 0 {
		opts.Batch = 128
	}
	if opts.Block <= 0 {
		opts.Block = 2 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Workers > store.Partitions() {
		opts.Workers = store.Partitions()
	}
	if opts.TimerTick <= 0 {
		opts.TimerTick = 50 * time.Millisecond
	}
	if opts.TimerSweep <= 0 {
		opts.TimerSweep = time.Second
	}
	if opts.ReclaimAfter <= 0 {
		opts.ReclaimAfter = 30 * time.Second
	}
	if opts.TrimEvery <= 0 {
		opts.TrimEvery = 5 * time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 10000
	}
	return &Engine{store: store, cat: cat, in: opts.Interpreter, opts: opts,
		log: opts.Logger.With("engine", opts.Consumer), nextDue: map[int]time.Time{},
		cache: newStateCache(opts.CacheSize)}
}

// Consumer returns the engine's consumer name.
func (e *Engine) Consumer() string { return e.opts.Consumer }

// Run works until ctx is cancelled, then returns after the transitions in
// flight are committed. Work read but not committed stays pending in the
// store and is reclaimed by another engine after ReclaimAfter.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	n := e.store.Partitions()
	for w := 0; w < e.opts.Workers; w++ {
		var parts []int
		for p := w; p < n; p += e.opts.Workers {
			parts = append(parts, p)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.readLoop(ctx, parts)
		}()
	}
	wg.Add(3)
	go func() { defer wg.Done(); e.timerLoop(ctx) }()
	go func() { defer wg.Done(); e.reclaimLoop(ctx) }()
	go func() { defer wg.Done(); e.trimLoop(ctx) }()
	wg.Wait()
	return nil
}

func (e *Engine) readLoop(ctx context.Context, parts []int) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		items, err := e.store.ReadWork(ctx, e.opts.Consumer, parts, e.opts.Batch, e.opts.Block)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("reading work failed; retrying", "err", err, "in", backoff)
			Sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if len(items) > 0 {
			// Finish what was read even when ctx is cancelled meanwhile.
			e.Process(context.WithoutCancel(ctx), items)
		}
	}
}

// Process applies work items. Each round loads the instances that need it
// (one round trip) and commits at most one transition per instance (one
// round trip for all of them); an instance with several items in the batch
// takes one round per item, each computed on the state the previous one
// committed. Committing an instance's next transition in the same round as
// the one before would be wrong: if the first lost a race to another
// engine, the second, computed on top of it, could still pass the revision
// check (the other engine moved the instance by one revision too) and
// overwrite that engine's transition, losing its event and applying this
// engine's first item twice.
func (e *Engine) Process(ctx context.Context, items []WorkItem) {
	type chain struct {
		id    InstanceID
		def   *dsl.Workflow
		st    *State     // the state to apply the next item to; nil = load it
		items []WorkItem // not applied yet, in arrival order
		loads int        // loads since the last commit of this instance
		// cached: st came from the cache, so it may be older than the
		// item (a state loaded after reading the item, or committed since,
		// is not). Such a state may compute a transition (the commit's
		// revision check catches it) but may not drop an item.
		cached bool
		// stored: the next state must come from the store (the shortcut
		// state lost a race or would have dropped an item).
		stored bool
	}
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
	for len(active) > 0 {
		// One engine applies one transition of an instance at a time: its
		// read loops and the activity runtime in its process
		// (ApplyTaskOutcome) would otherwise race each other into
		// revision conflicts, each a failed commit and a load.
		ids := make([]InstanceID, len(active))
		for i, c := range active {
			ids[i] = c.id
		}
		unlock := e.locks.lock(ids...)
		stop := func() bool {
			defer unlock()
			var acks []WorkItem
			var load []*chain
			for _, c := range active {
				if c.st != nil {
					continue
				}
				// A start item never reads the cache: it may begin a new
				// incarnation of an id whose earlier one is cached. It
				// carries the state it starts from instead, which is as
				// trustworthy as a cached one: the commit checks the revision
				// and the created time.
				first := c.items[0]
				var st *State
				var def *dsl.Workflow
				if c.stored {
					// no shortcut
				} else if first.Event.Kind == EvStart {
					if st = InitialState(c.id, first.Event); st != nil {
						def = c.def
						if def == nil || def.Hash != st.DefHash {
							// An error is reported by the load path below.
							def, _ = e.cat.Get(ctx, st.Name, st.DefHash)
						}
					}
				} else {
					st, def = e.cache.get(c.id)
				}
				if st != nil && def != nil {
					c.st, c.def, c.cached = st, def, true
					continue
				}
				load = append(load, c)
			}
			if len(load) > 0 {
				ids := make([]InstanceID, len(load))
				for i, c := range load {
					ids[i] = c.id
				}
				states, err := e.store.LoadStates(ctx, ids)
				if err != nil {
					e.log.Warn("loading instances failed; work stays pending", "err", err)
					return true
				}
				for i, c := range load {
					c.loads++
					st := states[i]
					if st == nil {
						acks = append(acks, c.items...) // purged or never created
						c.items = nil
						continue
					}
					if c.def == nil || c.def.Hash != st.DefHash {
						def, err := e.cat.Get(ctx, st.Name, st.DefHash)
						if err != nil {
							if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBrokenDefinition) {
								e.log.Error("instance's definition is gone; dropping its work", "instance", c.id, "err", err)
								acks = append(acks, c.items...)
							} else {
								// The store did not answer: the items stay pending
								// and are reclaimed and retried after the lease.
								e.log.Warn("loading the instance's definition failed; its work stays pending", "instance", c.id, "err", err)
							}
							c.items = nil
							continue
						}
						c.def = def
					}
					c.st, c.cached, c.stored = st, false, false
				}
			}
			// The next transition of every instance that has one.
			var ts []*Transition
			var owners []*chain
			reload := false
			for _, c := range active {
				for len(c.items) > 0 && c.st != nil {
					it := c.items[0]
					tr, err := e.in.Step(c.def, c.st, it.Event)
					if (err != nil || tr == nil) && c.cached {
						// Perhaps the item needs a newer state than the
						// cached one (a timer another engine set, say): ask
						// the stored state before dropping the item.
						e.cache.drop(c.id)
						c.st, c.cached, c.stored, reload = nil, false, true, true
						break
					}
					if err != nil {
						e.log.Error("transition failed; dropping work item", "instance", c.id, "event", it.Event.Kind, "err", err)
					}
					if err != nil || tr == nil {
						acks = append(acks, it)
						c.items = c.items[1:]
						continue
					}
					tr.WorkID = it.ID
					ts = append(ts, tr)
					owners = append(owners, c)
					break
				}
			}
			if len(acks) > 0 {
				if err := e.store.AckWork(ctx, acks); err != nil {
					e.log.Warn("acknowledging work failed", "err", err)
				}
			}
			if len(ts) == 0 {
				if !reload {
					return true
				}
				next := active[:0]
				for _, c := range active {
					if len(c.items) > 0 {
						next = append(next, c)
					}
				}
				active = next
				return false
			}
			after := takeAfterCommit(ts) // call steps' commands (see afterCommit)
			errs, err := e.store.Commit(ctx, ts)
			if err != nil {
				e.log.Warn("commit failed; work stays pending", "err", err)
				return true
			}
			for k, err := range errs {
				c := owners[k]
				switch {
				case err == nil:
					e.noteTimers(c.items[0].Partition, ts[k].Commands)
					e.afterCommit(ctx, ts[k], after, k)
					c.st, c.cached = ts[k].State, false
					e.cache.put(c.st, c.def)
					c.items = c.items[1:]
					c.loads = 0 // progress: count only conflicts in a row
				case errors.Is(err, ErrDuplicate):
					// Applied by another engine already: drop it, and read
					// what that engine made of the instance.
					c.items = c.items[1:]
					c.st, c.stored = nil, true
					e.cache.drop(c.id)
				case errors.Is(err, ErrConflict):
					c.st, c.stored = nil, true // reload, then apply the same item again
					e.cache.drop(c.id)
				default:
					e.log.Warn("commit of one transition failed; its work stays pending", "instance", c.id, "err", err)
					c.items = nil
					e.cache.drop(c.id)
				}
			}
			next := active[:0]
			for _, c := range active {
				switch {
				case len(c.items) == 0:
				case c.st == nil && c.loads == 8:
					e.log.Warn("giving up on a contended instance for now; its work will be reclaimed", "instance", c.id, "items", len(c.items))
				default:
					next = append(next, c)
				}
			}
			active = next
			return false
		}()
		if stop {
			return
		}
	}
}

// noteTimers remembers timers this engine created so it fires them on time
// without sweeping every partition at every tick.
func (e *Engine) noteTimers(part int, cmds []Command) {
	for _, c := range cmds {
		if t, ok := c.(*StartTimer); ok {
			e.mu.Lock()
			if d, ok := e.nextDue[part]; !ok || d.IsZero() || t.Due.Before(d) {
				e.nextDue[part] = t.Due
			}
			e.mu.Unlock()
		}
	}
}

// trimLoop drops acknowledged work items in bulk, so a commit needs no
// delete of its own, and finished instances past the store's retention.
func (e *Engine) trimLoop(ctx context.Context) {
	tick := time.NewTicker(e.opts.TrimEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for p := 0; p < e.store.Partitions(); p++ {
			if _, err := e.store.TrimWork(ctx, p); err != nil && ctx.Err() == nil {
				e.log.Warn("trimming work failed", "partition", p, "err", err)
			}
			if _, err := e.store.ExpireFinished(ctx, p, e.opts.Clock()); err != nil && ctx.Err() == nil {
				e.log.Warn("expiring finished instances failed", "partition", p, "err", err)
			}
		}
	}
}

func (e *Engine) timerLoop(ctx context.Context) {
	tick := time.NewTicker(e.opts.TimerTick)
	defer tick.Stop()
	var lastSweep time.Time
	for {
		now := e.opts.Clock()
		sweep := now.Sub(lastSweep) >= e.opts.TimerSweep || now.Before(lastSweep)
		if sweep {
			lastSweep = now
		}
		for p := 0; p < e.store.Partitions(); p++ {
			e.mu.Lock()
			due, known := e.nextDue[p]
			e.mu.Unlock()
			if !sweep && (!known || due.IsZero() || now.Before(due)) {
				continue
			}
			e.FireTimers(ctx, p, now)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// FireTimers moves the timers of partition p due at now into its work
// stream.
func (e *Engine) FireTimers(ctx context.Context, p int, now time.Time) {
	for {
		n, next, err := e.store.FireDueTimers(ctx, p, now, 512)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("firing timers failed", "partition", p, "err", err)
			}
			return
		}
		if n < 512 {
			e.mu.Lock()
			e.nextDue[p] = next
			e.mu.Unlock()
			return
		}
	}
}

func (e *Engine) reclaimLoop(ctx context.Context) {
	every := e.opts.ReclaimAfter / 2
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		e.Reclaim(ctx)
	}
}

// Reclaim takes over and applies work that a dead engine left pending.
func (e *Engine) Reclaim(ctx context.Context) {
	for p := 0; p < e.store.Partitions(); p++ {
		items, err := e.store.ReclaimWork(ctx, e.opts.Consumer, p, e.opts.ReclaimAfter, e.opts.Batch)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("reclaiming work failed", "partition", p, "err", err)
			}
			continue
		}
		if len(items) > 0 {
			e.log.Info("reclaimed work from a dead engine", "partition", p, "items", len(items))
			e.Process(context.WithoutCancel(ctx), items)
		}
	}
}

// ---- After a commit: child instances of call steps ----
//
// A call step's transition carries *StartChild and *TerminateChild
// commands, which no store applies: the engine takes them out before the
// commit and carries them out after it succeeded, and tells a parent when
// its child has ended. None of this is atomic with the commit; the parent's
// call step repeats StartChild on a timer while it waits, and StartChild
// also resends the end of a child that already finished, so an engine that
// dies in between only delays the call.

// ChildStore is what call steps need from the store besides Store.
// redisstore.Store has it.
type ChildStore interface {
	LatestDefinition(ctx context.Context, name string) (string, error)
	CreateInstance(ctx context.Context, n NewInstance) error
	FetchStatus(ctx context.Context, id InstanceID) (*InstanceStatus, error)
	RaiseEvent(ctx context.Context, id InstanceID, name string, data json.RawMessage, now time.Time) error
	SendControl(ctx context.Context, id InstanceID, ev Event) error
}

// takeAfterCommit removes the commands applied after the commit from each
// transition and returns them, per transition (nil when there are none).
func takeAfterCommit(ts []*Transition) [][]Command {
	var out [][]Command
	for i, t := range ts {
		for _, c := range t.Commands {
			switch c.(type) {
			case *StartChild, *TerminateChild:
				if out == nil {
					out = make([][]Command, len(ts))
				}
				out[i] = append(out[i], c)
			}
		}
		if out != nil && out[i] != nil {
			kept := make([]Command, 0, len(t.Commands)-len(out[i]))
			for _, c := range t.Commands {
				switch c.(type) {
				case *StartChild, *TerminateChild:
				default:
					kept = append(kept, c)
				}
			}
			t.Commands = kept
		}
	}
	return out
}

// afterCommit carries out a committed transition's child commands and, when
// it ended a child, tells the parent.
func (e *Engine) afterCommit(ctx context.Context, t *Transition, after [][]Command, k int) {
	var cmds []Command
	if after != nil {
		cmds = after[k]
	}
	st := t.State
	if len(cmds) == 0 && (st.Parent == "" || !st.Status.Terminal()) {
		return
	}
	cs, ok := e.store.(ChildStore)
	if !ok {
		e.log.Error("the store cannot create child instances; call steps wait forever", "instance", st.ID)
		return
	}
	now := e.opts.Clock()
	for _, c := range cmds {
		switch c := c.(type) {
		case *StartChild:
			e.startChild(ctx, cs, c, now)
		case *TerminateChild:
			err := cs.SendControl(ctx, c.ID, Event{Kind: EvTerminate, Time: now, Reason: c.Reason})
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinished) {
				e.log.Warn("terminating a child failed", "child", c.ID, "err", err)
			}
		}
	}
	if st.Parent != "" && st.Status.Terminal() {
		e.tellParent(ctx, cs, st.Parent, ChildResult{Child: st.ID, Status: st.Status, Output: st.Output}, now)
	}
}

// startChild creates a child that does not exist yet, or resends the end
// of one that has finished.
func (e *Engine) startChild(ctx context.Context, cs ChildStore, c *StartChild, now time.Time) {
	cur, err := cs.FetchStatus(ctx, c.ID)
	switch {
	case err == nil && cur.Status.Terminal():
		e.tellParent(ctx, cs, c.Parent, ChildResult{Child: c.ID, Status: cur.Status, Output: cur.Output}, now)
		return
	case err == nil:
		return // running
	case !errors.Is(err, ErrNotFound):
		e.log.Warn("checking a child failed; the parent asks again later", "child", c.ID, "err", err)
		return
	}
	failed := func(typ, msg string) {
		e.tellParent(ctx, cs, c.Parent, ChildResult{Child: c.ID, Status: StatusFailed, Output: mustJSON(ErrorInfo{Type: typ, Message: msg})}, now)
	}
	hash, err := cs.LatestDefinition(ctx, c.Workflow)
	if errors.Is(err, ErrNotFound) {
		failed(ErrTypeDefinition, fmt.Sprintf("workflow %s is not deployed", c.Workflow))
		return
	}
	var def *dsl.Workflow
	if err == nil {
		def, err = e.cat.Get(ctx, c.Workflow, hash)
	}
	if err != nil {
		e.log.Warn("loading a child's workflow failed; the parent asks again later", "child", c.ID, "err", err)
		return
	}
	if def.Input != nil {
		if err := def.Input.Validate(decodeJSON(c.Input)); err != nil {
			failed("InvalidInput", fmt.Sprintf("the input does not satisfy workflow %s's input schema: %v", c.Workflow, err))
			return
		}
	}
	ni := NewInstanceState(def, c.ID, c.Input, now)
	ni.State.Parent = c.Parent
	if err := cs.CreateInstance(ctx, ni); err != nil && !errors.Is(err, ErrAlreadyRunning) {
		e.log.Warn("creating a child failed; the parent asks again later", "child", c.ID, "err", err)
	}
}

// tellParent sends a child's end to its parent, unless the parent is gone.
func (e *Engine) tellParent(ctx context.Context, cs ChildStore, parent InstanceID, res ChildResult, now time.Time) {
	err := cs.RaiseEvent(ctx, parent, ChildEvent, mustJSON(res), now)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinished) {
		e.log.Warn("telling a parent of its child's end failed; the parent asks again later", "parent", parent, "child", res.Child, "err", err)
	}
}
