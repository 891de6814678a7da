package interpreter

import (
	"context"
	"log/slog"
	"runtime"
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
	// another engine takes it over (default 30s): the lease, for work
	// whose holder is not known dead (see Heartbeat).
	ReclaimAfter time.Duration
	// Heartbeat is how often the engine announces itself in a store that
	// is a Membership, and how often (twice as often) it looks at the
	// others' beats (default 1s). DeadAfter is how long another engine's
	// beat may stay unchanged before this one takes over its work items
	// and activity tasks (default 3×Heartbeat: three beats missed). The
	// beat has a goroutine of its own, so a long transition or a busy
	// engine does not delay it.
	Heartbeat time.Duration
	DeadAfter time.Duration
	// OnTakeover, when set, is called each time this engine moved work
	// from an engine taken for dead (a takeover may take several moves),
	// with that engine's consumer name and the work items and activity
	// tasks moved, before the items are applied. Tasks go to whichever
	// activity runtime reclaims next: cairn serve tells its own to look
	// at once. It runs on the engine's goroutine and must return quickly.
	OnTakeover func(dead string, items, tasks int)
	// TrimEvery is how often acknowledged work items are dropped from the
	// store in bulk (default 5s).
	TrimEvery time.Duration
	// CacheSize is how many instance states the engine keeps after
	// committing them, to apply their next work item without loading them
	// (default 10,000; negative: none). See stateCache.
	CacheSize int
	// Observer hears of the engine's transitions, timers, takeovers and
	// store calls (for metrics and traces); nil = none.
	Observer Observer
}

// Observer hears what an engine does, so that metrics and traces can be
// kept outside the interpreter. Its methods run on the engine's goroutines
// after the store has answered, so they must return quickly and must not
// call the store.
type Observer interface {
	// OnTransition: a transition was committed.
	OnTransition(t TransitionInfo)
	// OnTimerFired: a timer's work item was applied lag after its due
	// time, measured to when it was moved to the work stream.
	OnTimerFired(lag time.Duration)
	// OnReclaim: items work items of partition were taken over from an
	// engine that held them past the lease, or that stopped beating.
	OnReclaim(partition, items int)
	// OnStoreCall: a store call op (read, load, commit, ack, timers,
	// reclaim, trim, expire) ended with err; nil err is a success, which
	// ends an outage.
	OnStoreCall(op string, err error)
}

// TransitionInfo describes one committed transition.
type TransitionInfo struct {
	Instance InstanceID
	Workflow string
	// Step is the step the instance is on after the transition ("" when
	// none), or the failed step for an instance that failed.
	Step  dsl.StepID
	Event EventKind
	// From and To are the runtime statuses before and after: From is
	// StatusPending for a start, To is Terminal for an end.
	From, To RuntimeStatus
	// Began is when the engine began the transition (before the load or
	// the cache look-up), Duration the time from then to the commit.
	Began    time.Time
	Duration time.Duration
	// Trace is the instance's trace context (a W3C traceparent; "" when
	// none).
	Trace string
}

// nopObserver is the Observer of an engine that has none.
type nopObserver struct{}

func (nopObserver) OnTransition(TransitionInfo) {}
func (nopObserver) OnTimerFired(time.Duration)  {}
func (nopObserver) OnReclaim(int, int)          {}
func (nopObserver) OnStoreCall(string, error)   {}

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
	obs   Observer

	mu      sync.Mutex
	nextDue map[int]time.Time // earliest timer this engine knows of, per partition

	// retry holds work items a round left pending because the store
	// failed; retryLoop applies them again once it answers (retry.go).
	retry retryQueue
	// outcomes groups the task outcomes and client messages handed over
	// in process (ApplyTaskOutcome, RaiseEvent, SendControl; outcomes.go).
	outcomes outcomeGroups
	// eager holds a token per first step CreateInstance computes.
	eager chan struct{}
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
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = 3 * opts.Heartbeat
	}
	if opts.TrimEvery <= 0 {
		opts.TrimEvery = 5 * time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 10000
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	log := opts.Logger.With("engine", opts.Consumer)
	return &Engine{store: store, cat: cat, in: opts.Interpreter, opts: opts,
		log: log, nextDue: map[int]time.Time{}, cache: newStateCache(opts.CacheSize),
		eager: make(chan struct{}, runtime.GOMAXPROCS(0)),
		obs:   &outageLog{Observer: opts.Observer, log: log, now: opts.Clock}}
}

// Consumer returns the engine's consumer name.
func (e *Engine) Consumer() string { return e.opts.Consumer }

// Run works until ctx is cancelled, then returns after the transitions in
// flight are committed. Work read but not committed stays pending in the
// store and is reclaimed by another engine after ReclaimAfter. In a store
// that is a Membership the engine beats while it runs, and takes over
// from engines that stopped beating (beatLoop, watchLoop); when ctx ends
// it leaves the members, so what it still finishes is not taken from it.
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
	if m, ok := e.store.(Membership); ok {
		wg.Add(2)
		go func() { defer wg.Done(); e.beatLoop(ctx, m) }()
		go func() { defer wg.Done(); e.watchLoop(ctx, m) }()
	}
	wg.Add(4)
	go func() { defer wg.Done(); e.retryLoop(ctx) }() // retry.go
	go func() { defer wg.Done(); e.timerLoop(ctx) }()
	go func() { defer wg.Done(); e.reclaimLoop(ctx) }()
	go func() { defer wg.Done(); e.trimLoop(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); e.runSchedules(ctx) }() // scheduler.go
	wg.Wait()
	return nil
}

func (e *Engine) readLoop(ctx context.Context, parts []int) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		items, err := e.store.ReadWork(ctx, e.opts.Consumer, parts, e.opts.Batch, e.opts.Block)
		if ctx.Err() == nil {
			e.obs.OnStoreCall("read", err)
		}
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
			_, err := e.store.TrimWork(ctx, p)
			if ctx.Err() != nil {
				return
			}
			e.obs.OnStoreCall("trim", err)
			if err != nil {
				e.log.Warn("trimming work failed", "partition", p, "err", err)
			}
			_, err = e.store.ExpireFinished(ctx, p, e.opts.Clock())
			if ctx.Err() != nil {
				return
			}
			e.obs.OnStoreCall("expire", err)
			if err != nil {
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
		if ctx.Err() != nil {
			return
		}
		e.obs.OnStoreCall("timers", err)
		if err != nil {
			e.log.Warn("firing timers failed", "partition", p, "err", err)
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
		if ctx.Err() != nil {
			return
		}
		e.obs.OnStoreCall("reclaim", err)
		if err != nil {
			e.log.Warn("reclaiming work failed", "partition", p, "err", err)
			continue
		}
		if len(items) > 0 {
			e.obs.OnReclaim(p, len(items))
			e.log.Info("reclaimed work from a dead engine", "partition", p, "items", len(items),
				"instances", distinctInstances(items))
			e.Process(context.WithoutCancel(ctx), items)
		}
	}
}

// distinctInstances counts the instances a batch of work items is for.
func distinctInstances(items []WorkItem) int {
	seen := make(map[InstanceID]struct{}, len(items))
	for _, it := range items {
		seen[it.Instance] = struct{}{}
	}
	return len(seen)
}
