package activity

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// TaskStore is what the Runtime needs from durable storage (redisstore's
// Store implements it). Leases are the store's: a task read or reclaimed by
// a consumer is held by it until completed or failed, and another consumer
// may reclaim it once it has gone minIdle without an ExtendTasks.
//
// Reads may return more tasks than asked for (a store of P partitions
// asks each for its share, rounded up, so fewer than want+P in all): all
// of them are leased to the consumer, which queues what it cannot start
// at once instead of handing it back: handing back and reclaiming costs
// Redis commands per task for nothing.
type TaskStore interface {
	// ReadTaskBatch leases new tasks of queue to consumer, at least want
	// when that many are waiting, waiting up to block for the first.
	ReadTaskBatch(ctx context.Context, consumer, queue string, want int, block time.Duration) ([]interpreter.Task, error)
	// ReclaimTaskBatch leases to consumer up to want tasks of queue whose
	// holder has not completed, failed or extended them for minIdle, or
	// that were released; more reports that there may be more such tasks.
	// Tasks may come with an error (a part of the store failed): they are
	// leased all the same.
	ReclaimTaskBatch(ctx context.Context, consumer, queue string, minIdle time.Duration, want int) (tasks []interpreter.Task, more bool, err error)
	// CompleteTask and FailTask record the outcome and queue it for the
	// instance, atomically with acknowledging the task. A task already
	// completed or failed is interpreter.ErrDuplicate and writes nothing.
	CompleteTask(ctx context.Context, ref interpreter.TaskRef, result json.RawMessage, now time.Time) error
	FailTask(ctx context.Context, ref interpreter.TaskRef, info interpreter.ErrorInfo, now time.Time) error
	// ExtendTasks renews consumer's leases (a heartbeat); errs[i] is
	// refs[i]'s outcome. When consumer no longer holds a task it is
	// interpreter.ErrNotFound (or interpreter.ErrConflict when another
	// consumer holds it now).
	ExtendTasks(ctx context.Context, consumer string, refs []interpreter.TaskRef) (errs []error)
	// ReleaseTasks hands back tasks consumer holds and will not run, so
	// that any consumer's next reclaim takes them without waiting out the
	// lease. Errors are as ExtendTasks'.
	ReleaseTasks(ctx context.Context, consumer string, refs []interpreter.TaskRef) (errs []error)
}

// WithdrawalWatcher is a TaskStore that announces tasks withdrawn while a
// consumer holds them (their instance ended, or the attempt timed out);
// redisstore's Store is one. WatchWithdrawn calls fn with each
// withdrawal's instance and task ids until ctx ends. A Runtime over such a
// store cancels the handlers of those tasks at once; over any other store
// it learns of them from its next lease renewal
// (interpreter.ErrInstanceFinished or ErrNotFound).
type WithdrawalWatcher interface {
	// subscribed, when not nil, is called once the watch is in place.
	WatchWithdrawn(ctx context.Context, subscribed func(), fn func(instance interpreter.InstanceID, tasks []string)) error
}

// watchStartWait bounds how long Run waits for the withdrawal watch to be
// in place before its first task read: a store that cannot subscribe
// (down at start-up) must not keep the runtime from working; lease
// renewals find withdrawn tasks then.
const watchStartWait = 2 * time.Second

// Options configure a Runtime. Zero values take the defaults.
type Options struct {
	// Consumer names this runtime among the consumers of the task
	// streams; it must be unique among live runtimes. Default:
	// host-pid-random.
	Consumer string
	// Concurrency is the most Go handler and expr binding attempts run
	// at once: they use the CPU (default 2×GOMAXPROCS, at least 8).
	Concurrency int
	// HTTPConcurrency is the most http binding attempts in flight at
	// once: they wait on the network, so many fit (default 256).
	//
	// The runtime leases up to Concurrency + HTTPConcurrency tasks; each
	// waits in its queue for its class's slot and for its activity's own
	// `concurrency:` limit, if any, and is heartbeated while it waits. It
	// reads no more while Concurrency or more wait, so a backlog of CPU
	// tasks stays in the store for other runtimes to take.
	HTTPConcurrency int
	// Lease is how long a task may go without a heartbeat before another
	// runtime takes it over (default 30s). A task this runtime holds,
	// running or queued, is extended once it is Lease/4 old (so a task
	// done sooner costs no heartbeat), so Lease bounds how long a crashed
	// runtime's tasks wait, not how long a task may run. Expired leases
	// are looked for at start-up and every Lease/2 (5s at most).
	Lease time.Duration
	// Block is how long one read waits for new tasks (default 2s); it also
	// bounds how long Run takes to notice that its context ended.
	Block time.Duration
	// ShutdownGrace is how long Run lets running tasks finish once its
	// context ends (default 10s). Then their contexts are cancelled and
	// they are abandoned: their tasks stay leased until the lease expires
	// and another runtime runs them again.
	ShutdownGrace time.Duration
	// Clock is the runtime's only clock: the time recorded with
	// completions, and what it measures leases and reclaim intervals with
	// (default time.Now, whose monotonic reading leases rely on).
	Clock func() time.Time
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// HTTPClient makes the requests of http bindings (default: a client
	// with no timeout of its own; each request has its binding's).
	HTTPClient *http.Client
	// Observer hears of every attempt this runtime runs (for metrics and
	// traces); nil = none.
	Observer Observer
	// Enqueued, when set, tells when a task was queued, for the time it
	// waited for a runtime (redisstore's Store.TaskEnqueued).
	Enqueued func(interpreter.TaskRef) (time.Time, bool)
}

// Observer hears of the attempts a Runtime runs. Its methods run on the
// task's goroutine and must return quickly.
type Observer interface {
	// TaskStarted: the attempt t begins, waited after it was queued (-1
	// when unknown). The context it returns is the attempt's: its
	// handler and its outcome's report run under it.
	TaskStarted(ctx context.Context, t Task, waited time.Duration) context.Context
	// TaskFinished: the attempt ended after d with outcome (OutcomeCompleted,
	// OutcomeFailed or OutcomeTimedOut), or "" when this runtime stopped it
	// without an outcome (its lease was lost, the runtime shut down, the
	// store could not be read).
	TaskFinished(ctx context.Context, t Task, outcome string, d time.Duration)
	// InjectTrace adds the trace context of ctx (an attempt's) to the
	// header of an http binding's request.
	InjectTrace(ctx context.Context, h http.Header)
}

// The outcomes of an attempt, as Observer.TaskFinished reports them.
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
	OutcomeTimedOut  = "timed_out"
)

// outcomeOf names the outcome of an attempt that ended with err.
func outcomeOf(err error) string {
	if err == nil {
		return OutcomeCompleted // without ae, which escapes to errors.As
	}
	var ae *Error
	if errors.As(err, &ae) && ae.Type == ErrTypeTimeout {
		return OutcomeTimedOut
	}
	return OutcomeFailed
}

type nopObserver struct{}

func (nopObserver) TaskStarted(ctx context.Context, _ Task, _ time.Duration) context.Context {
	return ctx
}
func (nopObserver) TaskFinished(context.Context, Task, string, time.Duration) {}
func (nopObserver) InjectTrace(context.Context, http.Header)                  {}

// tracing is the http bindings' transport: it adds the attempt's trace
// context to each request, from the request's context.
type tracing struct {
	next http.RoundTripper
	obs  Observer
}

func (t tracing) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not change the caller's request
	t.obs.InjectTrace(req.Context(), req.Header)
	return t.next.RoundTrip(req)
}

// Runtime takes the tasks of the local queue (interpreter.LocalQueue) from
// the store and runs them: Go handlers from its Registry, http and expr
// bindings from the workflow's activities section. Tasks of activities
// bound to external workers are left for them. Any number of runtimes may
// share one store; each task runs at least once.
type Runtime struct {
	store TaskStore
	cat   *interpreter.Catalog
	reg   *Registry
	opts  Options
	log   *slog.Logger
	http  *http.Client

	mu     sync.Mutex
	held   map[interpreter.TaskRef]*held // every task leased to this runtime, queued or running
	active bool                          // Run is running
	limits map[limitKey]chan struct{}    // activities' own per-process limits

	shared SlotStore // the store's shared semaphores, if it keeps them

	// cpu and httpSlots hold one token per attempt running in the class.
	cpu, httpSlots chan struct{}
	// admitted is signalled when a queued task starts running or ends, so
	// a read loop waiting for the queue to shrink looks again.
	admitted chan struct{}

	// renewing is held by a heartbeat round from choosing the tasks to
	// storing the outcome, and by the hand-back of queued tasks at
	// shutdown, so a heartbeat never renews a task just handed back.
	renewing sync.Mutex

	// reclaimSoon asks the read loop to reclaim at its next read
	// (ReclaimSoon).
	reclaimSoon atomic.Bool
}

// ReclaimSoon makes the runtime look for tasks to take over (handed back,
// or whose lease expired) at its next read, instead of at the next reclaim
// interval: an engine that took over a dead engine's tasks calls it, so
// they run again within a read's Block, not up to 5 s later. Safe to call
// from any goroutine.
func (r *Runtime) ReclaimSoon() { r.reclaimSoon.Store(true) }

// held is one task leased to this runtime: queued until cancel is set,
// then running.
type held struct {
	task    interpreter.Task
	renewed time.Time               // no later than its lease last (re)started
	cancel  context.CancelCauseFunc // stops the handler: lease lost or abandoned
	running bool                    // it holds its slots (admit); else it waits for them
	// slot is the global concurrency slot it holds, if any, renewed at
	// slotRenewed.
	slot        *Slot
	slotRenewed time.Time
}

// Causes of a handler's cancellation other than its timeout; a failure
// that follows them is not reported (the task belongs to another runtime,
// or will once its lease expires).
var (
	errLeaseLost = errors.New("activity: the task's lease was lost to another runtime")
	errAbandoned = errors.New("activity: the runtime is shutting down")
	errWithdrawn = errors.New("activity: the task was withdrawn: its instance ended or its attempt timed out")
)

// NewRuntime returns a Runtime over store that reads workflow definitions
// (for the activities' bindings) from catalog and Go handlers from reg (nil
// for none). Run starts it.
func NewRuntime(store TaskStore, catalog *interpreter.Catalog, reg *Registry, opts Options) *Runtime {
	if opts.Consumer == "" {
		opts.Consumer = interpreter.DefaultConsumer()
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultConcurrency()
	}
	if opts.HTTPConcurrency <= 0 {
		opts.HTTPConcurrency = defaultHTTPConcurrency
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Block <= 0 {
		opts.Block = 2 * time.Second
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	} else {
		c := *client
		next := c.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		c.Transport = tracing{next: next, obs: opts.Observer}
		client = &c
	}
	if reg == nil {
		reg = NewRegistry()
	}
	return &Runtime{
		store: store, cat: catalog, reg: reg, opts: opts, http: client,
		log:  opts.Logger.With("component", "activity", "consumer", opts.Consumer),
		held: map[interpreter.TaskRef]*held{}, limits: map[limitKey]chan struct{}{}, shared: sharedSlots(store),
		cpu:       make(chan struct{}, opts.Concurrency),
		httpSlots: make(chan struct{}, opts.HTTPConcurrency),
		admitted:  make(chan struct{}, 1),
	}
}

// Consumer returns the name this runtime leases tasks under.
func (r *Runtime) Consumer() string { return r.opts.Consumer }

// Held returns how many tasks this runtime holds: queued (leased, waiting
// for a free slot of their class or their activity's limit) and running
// (in flight). Metrics read it as the local queue depth and the in-flight
// count.
func (r *Runtime) Held() (queued, running int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.countHeld()
}

// countHeld is Held with r.mu held.
func (r *Runtime) countHeld() (queued, running int) {
	for _, h := range r.held {
		if h.running {
			running++
		} else {
			queued++
		}
	}
	return queued, running
}

// signalAdmitted wakes a read loop waiting for the queue to shrink.
func (r *Runtime) signalAdmitted() {
	select {
	case r.admitted <- struct{}{}:
	default:
	}
}

// awaitQueue waits until fewer than Concurrency held tasks wait for their
// slots; false when ctx ended first.
func (r *Runtime) awaitQueue(ctx context.Context) bool {
	for {
		r.mu.Lock()
		queued, _ := r.countHeld()
		r.mu.Unlock()
		if queued < r.opts.Concurrency {
			return true
		}
		select {
		case <-r.admitted:
		case <-ctx.Done():
			return false
		}
	}
}

// Run reads and runs tasks until ctx ends, then waits up to
// Options.ShutdownGrace for the running ones, abandons the rest and
// returns. Read errors are logged and retried, never returned; it returns
// an error only when it is already running.
func (r *Runtime) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.active {
		r.mu.Unlock()
		return errors.New("activity: Runtime.Run is already running")
	}
	r.active = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.active = false
		r.mu.Unlock()
	}()

	var tasks sync.WaitGroup
	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); r.heartbeatLoop(hbCtx) }()
	wdDone := make(chan struct{})
	watching := make(chan struct{})
	go func() { defer close(wdDone); r.watchWithdrawn(hbCtx, sync.OnceFunc(func() { close(watching) })) }()
	// A task read before the watch is subscribed and withdrawn meanwhile
	// would run on unseen until its next lease renewal (Lease/4): wait
	// for the subscription first, briefly.
	startWait := time.NewTimer(watchStartWait)
	select {
	case <-watching:
	case <-startWait.C:
	case <-ctx.Done():
	}
	startWait.Stop()

	w := &workers{jobs: make(chan job)}
	r.readLoop(ctx, &tasks, w)
	close(w.jobs) // nothing starts any more: idle workers end, busy ones after their task

	done := make(chan struct{})
	go func() { tasks.Wait(); close(done) }()
	grace := time.NewTimer(r.opts.ShutdownGrace)
	select {
	case <-done:
	case <-grace.C:
		r.mu.Lock()
		n := 0
		for _, h := range r.held {
			if h.cancel != nil {
				h.cancel(errAbandoned)
				n++
			}
		}
		r.mu.Unlock()
		r.log.Warn("abandoning running tasks at shutdown; another runtime takes them over when their lease expires", "tasks", n)
		<-done
	}
	grace.Stop()
	w.wg.Wait()
	stopHB()
	<-hbDone
	<-wdDone
	return nil
}

// watchWithdrawn cancels the handlers of withdrawn tasks, and drops queued
// ones, as the store announces them; it resubscribes after a failure
// until ctx ends. A store that announces nothing leaves it to renewDue.
//
// ready is called once the first watch is subscribed, or when watching
// has failed or is impossible (Run waits for it before reading tasks).
func (r *Runtime) watchWithdrawn(ctx context.Context, ready func()) {
	defer ready()
	w, ok := r.store.(WithdrawalWatcher)
	if !ok {
		return
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.WatchWithdrawn(ctx, ready, r.withdraw)
		if errors.Is(err, errNoWithdrawals) {
			return
		}
		ready() // failed: Run does not wait for the retry
		if err != nil && ctx.Err() == nil {
			r.log.Warn("watching withdrawn tasks failed; retrying (until then, lease renewals find them)", "err", err, "in", backoff)
		}
		interpreter.Sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
}

// withdraw stops the held tasks of instance named in tasks: a running one
// has its context cancelled (its outcome is not reported), a queued one
// never starts. The store has closed them already.
func (r *Runtime) withdraw(instance interpreter.InstanceID, tasks []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref, h := range r.held {
		if ref.Instance != instance || !slices.Contains(tasks, ref.TaskID) {
			continue
		}
		r.stopHeld(ref, h, errWithdrawn)
	}
}

// stopHeld stops held task h (r.mu held): cancels it when running, else
// forgets it so that it never starts.
func (r *Runtime) stopHeld(ref interpreter.TaskRef, h *held, cause error) {
	if h.cancel != nil {
		h.cancel(cause)
	} else if r.held[ref] == h {
		delete(r.held, ref)
	}
}

// readLoop leases tasks while slots are free and starts them.
//
// A read may return more tasks than there are free slots (a store asks
// each partition for its share, rounded up). The surplus is leased to this
// runtime, so it is queued here, heartbeated like running tasks and
// started as slots free: handing it back would cost a command per task,
// and taking it again a reclaim of every partition. The store is read
// again only once the queue is empty, so the queue never holds more than
// one read's surplus.
//
// Expired leases are looked for at start-up (a crashed predecessor may
// have left tasks) and then every reclaimEvery; again at once only while
// a reclaim comes back full, which ends when the expired tasks are taken.
func (r *Runtime) readLoop(ctx context.Context, tasks *sync.WaitGroup, w *workers) {
	capacity := r.opts.Concurrency + r.opts.HTTPConcurrency
	slots := make(chan struct{}, capacity) // one token per task held and started
	release := func(n int) {
		for range n {
			<-slots
		}
	}
	// A task keeps ctx's values but not its end: shutdown has a grace
	// period.
	detached := context.WithoutCancel(ctx)
	start := func(t interpreter.Task) bool {
		return r.start(job{quit: ctx, base: detached, tasks: tasks, release: release}, t, w)
	}
	var queue []interpreter.Task // leased to us, not started yet
	defer func() { r.releaseQueued(queue) }()
	reclaimEvery := min(r.opts.Lease/2, 5*time.Second)
	var lastReclaim time.Time
	reclaimMore := false
	backoff := 50 * time.Millisecond
	for {
		// Wait for one free slot.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil { // select picks at random when both are ready
			release(1)
			return
		}
		if len(queue) > 0 {
			t := queue[0]
			queue = queue[1:]
			if !start(t) {
				release(1) // its lease was lost while it waited
			}
			continue
		}
		// Read only while the queue is short (see Options.HTTPConcurrency).
		if !r.awaitQueue(ctx) {
			release(1)
			return
		}
		// Take every free slot.
		n := 1
	grab:
		for n < capacity {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break grab
			}
		}

		var got []interpreter.Task
		var err error
		soon := r.reclaimSoon.Swap(false)
		if reclaimMore || soon || r.opts.Clock().Sub(lastReclaim) >= reclaimEvery {
			sent := r.opts.Clock()
			var taken []interpreter.Task
			taken, reclaimMore, err = r.store.ReclaimTaskBatch(ctx, r.opts.Consumer, interpreter.LocalQueue, r.opts.Lease, n)
			lastReclaim = sent
			got = r.hold(taken, sent)
			if len(got) > 0 {
				r.log.Debug("took over tasks whose lease expired or that were handed back", "tasks", len(got))
			}
		}
		if err == nil && len(got) < n {
			block := r.opts.Block
			if len(got) > 0 {
				block = 0
			}
			sent := r.opts.Clock()
			var read []interpreter.Task
			read, err = r.store.ReadTaskBatch(ctx, r.opts.Consumer, interpreter.LocalQueue, n-len(got), block)
			got = append(got, r.hold(read, sent)...)
		}
		started := 0
		for i, t := range got {
			if started == n {
				queue = append(queue, got[i:]...)
				break
			}
			if start(t) {
				started++
			}
		}
		release(n - started)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("reading tasks failed; retrying", "err", err, "in", backoff)
			interpreter.Sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
	}
}

// hold records tasks just leased to this runtime (sent: when the read or
// reclaim was sent, so no later than their leases began) and returns the
// ones it did not hold already. A reclaim may take one of our own tasks
// whose heartbeat was late: it stays ours, with its lease renewed, and
// must not run twice.
func (r *Runtime) hold(ts []interpreter.Task, sent time.Time) []interpreter.Task {
	out := ts[:0]
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range ts {
		if h, dup := r.held[t.Ref]; dup {
			if sent.After(h.renewed) {
				h.renewed = sent
			}
			continue
		}
		r.held[t.Ref] = &held{task: t, renewed: sent}
		out = append(out, t)
	}
	return out
}

// job is a task started, for a worker to run: quit is Run's context,
// base the task's (a child of quit's values, cancelled by cancel), tasks
// and release what the task holds until it ends: Run's count of running
// tasks and one of readLoop's slots.
type job struct {
	quit, base context.Context
	cancel     context.CancelCauseFunc
	h          *held
	tasks      *sync.WaitGroup
	release    func(int)
}

// workers are the goroutines that run started tasks. One that finished a
// task waits up to workerIdle for the next instead of ending: a new
// goroutine starts on the smallest stack and grows it, copying it each
// time it doubles, to the depth of a task's report (through Direct the
// engine's whole round runs under it), which cost cairn serve ~5 % of its
// CPU when each task had a goroutine of its own; a worker keeps its stack.
// There are as many as tasks run at once (readLoop's slots bound them),
// and a few more for a moment: a worker just done may not be waiting yet
// when the next task starts.
type workers struct {
	jobs chan job // unbuffered: a send succeeds only when a worker waits
	wg   sync.WaitGroup
}

// workerIdle is how long a worker waits for a task before it ends.
const workerIdle = 10 * time.Second

// start hands j to a waiting worker, or to a new one when none waits.
func (w *workers) start(r *Runtime, j job) {
	select {
	case w.jobs <- j:
	default:
		w.wg.Add(1)
		go w.work(r, j)
	}
}

// work runs j, then the jobs it is handed, until it waits workerIdle for
// one or the jobs channel is closed (Run is stopping).
func (w *workers) work(r *Runtime, j job) {
	defer w.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		r.runTask(j)
		idle.Reset(workerIdle)
		var ok bool
		select {
		case j, ok = <-w.jobs:
			if !ok {
				return
			}
		case <-idle.C:
			return
		}
	}
}

// start has a worker run held task t, holding one slot; false when t is
// no longer held (a heartbeat found its lease lost) or already running.
// j has every field but cancel and h.
func (r *Runtime) start(j job, t interpreter.Task, w *workers) bool {
	base, cancel := context.WithCancelCause(j.base)
	r.mu.Lock()
	h := r.held[t.Ref]
	if h == nil || h.cancel != nil {
		r.mu.Unlock()
		cancel(nil)
		return false
	}
	h.cancel = cancel
	r.mu.Unlock()
	j.base, j.cancel, j.h = base, cancel, h
	j.tasks.Add(1)
	w.start(r, j)
	return true
}

// runTask runs a started task to its end, then gives up what it held.
func (r *Runtime) runTask(j job) {
	defer j.tasks.Done()
	defer j.release(1)
	defer func() {
		ref := j.h.task.Ref
		r.mu.Lock()
		if r.held[ref] == j.h {
			delete(r.held, ref)
		}
		r.mu.Unlock()
		r.signalAdmitted()
		j.cancel(nil)
	}()
	r.handle(j.quit, j.base, j.h)
}

// releaseQueued hands back the tasks still queued when the runtime stops,
// so that other runtimes take them at their next reclaim rather than after
// the lease. If that fails they simply wait out the lease.
func (r *Runtime) releaseQueued(queue []interpreter.Task) {
	if len(queue) == 0 {
		return
	}
	r.renewing.Lock()
	defer r.renewing.Unlock()
	refs := make([]interpreter.TaskRef, 0, len(queue))
	r.mu.Lock()
	for _, t := range queue {
		if h := r.held[t.Ref]; h != nil && h.cancel == nil {
			delete(r.held, t.Ref) // no heartbeat may renew it any more
			refs = append(refs, t.Ref)
		}
	}
	r.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0
	var first error
	for _, err := range r.store.ReleaseTasks(ctx, r.opts.Consumer, refs) {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	r.log.Info("handed back queued tasks at shutdown", "tasks", len(refs), "failed", failed, "err", first)
}

// handBack returns a task that waited for its slots when the runtime
// stopped, so that another runtime's next reclaim takes it at once; if
// that fails it waits out its lease.
func (r *Runtime) handBack(h *held) {
	r.renewing.Lock()
	defer r.renewing.Unlock()
	ref := h.task.Ref
	r.mu.Lock()
	if r.held[ref] != h {
		r.mu.Unlock()
		return
	}
	delete(r.held, ref) // no heartbeat may renew it any more
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.store.ReleaseTasks(ctx, r.opts.Consumer, []interpreter.TaskRef{ref})[0]; err != nil {
		r.log.Info("handing back a queued task at shutdown failed; it runs again after its lease", "task", ref.TaskID, "err", err)
	}
}

// outcome is what running a task produced.
type outcome struct {
	result json.RawMessage
	err    error
}

// handle waits for the task's slots (admit), runs it and reports its
// outcome. base is cancelled when the lease is lost, the task withdrawn or
// abandoned; quit is Run's context: a task still waiting for its slots
// when it ends is handed back to the store.
func (r *Runtime) handle(quit, base context.Context, h *held) {
	it := h.task
	s := it.Schedule
	t := taskOf(&s)
	t.Trace = s.Trace

	var opts *dsl.ActivityOptions
	var defErr error
	if r.cat != nil && (s.Workflow != "" || s.DefHash != "") {
		def, err := r.cat.Get(base, s.Workflow, s.DefHash)
		switch {
		case errors.Is(err, interpreter.ErrNotFound):
			defErr = &Error{Type: ErrTypeDefinition, Message: err.Error(), NonRetryable: true}
		case err != nil:
			// Perhaps the store is away: leave the task leased; it runs
			// again when the lease expires.
			r.taskLog(&t).Warn("cannot read the task's workflow definition; leaving the task for a retry after its lease", "err", err)
			return
		default:
			opts = def.Activities[s.Activity]
		}
	}
	// release gives back the attempt's slots (its class's and its
	// activity's limit) once: when its outcome is known, before it is
	// reported. The slots bound the attempts computing at once; reporting
	// waits on the store (a commit, shared with other outcomes), and a slot
	// held through it would leave the CPU idle while tasks queue.
	release := func() {}
	if defErr == nil {
		adm, err := r.admit(base, quit, h, opts)
		if err != nil {
			if base.Err() == nil {
				r.handBack(h)
			}
			return
		}
		freed := false
		release = func() {
			if !freed {
				freed = true
				adm.free(r)
				r.signalAdmitted()
			}
		}
		defer release()
		r.signalAdmitted()
	}

	began := r.opts.Clock()
	waited := time.Duration(-1)
	if r.opts.Enqueued != nil {
		if at, ok := r.opts.Enqueued(it.Ref); ok {
			waited = max(began.Sub(at), 0)
		}
	}
	base = r.opts.Observer.TaskStarted(base, t, waited)
	ended := ""
	defer func() { r.opts.Observer.TaskFinished(base, t, ended, r.opts.Clock().Sub(began)) }()
	report := func(result json.RawMessage, err error) {
		ended = outcomeOf(err)
		release()
		r.report(base, &t, it.Ref, result, err)
	}
	if defErr != nil {
		report(nil, defErr)
		return
	}
	var binding *dsl.Binding
	if opts != nil {
		binding = opts.Binding
	}

	if binding != nil && binding.Kind == dsl.BindExpr {
		r.runInline(base, binding, &t, s.Timeout, report)
		return
	}

	hctx := base
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(base, s.Timeout)
		defer cancel()
	}
	done := make(chan outcome, 1)
	go func() {
		defer r.recoverPanic(&t, func(o outcome) { done <- o })
		res, err := r.runBinding(hctx, binding, t)
		done <- outcome{result: res, err: err}
	}()

	var o outcome
	select {
	case o = <-done:
	case <-hctx.Done():
		select {
		case o = <-done: // it finished at the same moment
		default:
			if base.Err() != nil {
				r.taskLog(&t).Info("stopped waiting for the task", "why", context.Cause(base))
				return
			}
			// The timeout passed and the handler has not returned: report
			// it now. A handler that ignores ctx runs on, outside the
			// slots; its outcome is dropped.
			report(nil, timeoutError(t, s.Timeout))
			return
		}
	}
	if o.err != nil {
		if base.Err() != nil {
			r.taskLog(&t).Info("the task was stopped", "why", context.Cause(base), "err", o.err)
			return
		}
		if hctx.Err() != nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
			o.err = timeoutError(t, s.Timeout)
		}
	}
	report(o.result, o.err)
}

// runInline runs an expr binding on the calling goroutine: an expression
// takes no context and cannot block (its evaluation is bounded by expr's
// memory budget), so a goroutine of its own, a channel and a timer would
// only cost. What the handle's select decides for the others is decided
// when it returns, as if it had been raced: withdrawn, its lease lost or
// the runtime stopping meanwhile, it is not reported; past its timeout it
// fails with the timeout, as a handler still running at the deadline.
func (r *Runtime) runInline(base context.Context, b *dsl.Binding, t *Task, timeout time.Duration, report func(json.RawMessage, error)) {
	var began time.Time
	if timeout > 0 {
		began = time.Now() // as context.WithTimeout measures
	}
	var o outcome
	func() {
		defer r.recoverPanic(t, func(p outcome) { o = p })
		o.result, o.err = runExpr(b, *t)
	}()
	switch {
	case base.Err() != nil:
		r.taskLog(t).Info("stopped waiting for the task", "why", context.Cause(base))
	case timeout > 0 && time.Since(began) >= timeout:
		report(nil, timeoutError(*t, timeout))
	default:
		report(o.result, o.err)
	}
}

// recoverPanic, deferred by what runs a task's handler or binding, turns
// a panic into the attempt's failure (type ActivityPanic) and hands it to
// fail; the process goes on.
func (r *Runtime) recoverPanic(t *Task, fail func(outcome)) {
	if p := recover(); p != nil {
		r.taskLog(t).Error("activity handler panicked", "panic", p, "stack", string(debug.Stack()))
		fail(outcome{err: &Error{Type: ErrTypePanic, Message: fmt.Sprintf("activity %s panicked: %v", t.Activity, p)}})
	}
}

func timeoutError(t Task, d time.Duration) error {
	return &Error{Type: ErrTypeTimeout, Message: fmt.Sprintf("activity %s did not finish within its timeout of %s", t.Activity, d)}
}

// taskLog is the logger of one attempt's lines: the runtime's, with the
// attempt's attributes. It is built for each line rather than once per
// attempt because With formats the attributes at once, which cost more
// than the rest of an attempt's bookkeeping, and most attempts log nothing.
func (r *Runtime) taskLog(t *Task) *slog.Logger {
	return r.log.With("instance", t.InstanceID, "task", t.ID, "activity", t.Activity, "attempt", t.Attempt)
}

// report records a task's result (err nil) or failure. While the store is
// unavailable (interpreter.ErrUnavailable: Redis down, a failover) it holds
// the outcome and retries, backing off to reportBackoffMax, for as long as
// the runtime runs: dropping it would run the activity again after its
// lease. Other store errors get reportTries tries. The outcome's time is
// when the activity finished, not when it got through: the engine compares
// it with the attempt's deadline, so an outage does not turn an activity
// that finished in time into an ActivityTimeout (interpreter/timeout.go).
func (r *Runtime) report(base context.Context, t *Task, ref interpreter.TaskRef, result json.RawMessage, err error) {
	finished := r.opts.Clock()
	var info interpreter.ErrorInfo
	if err != nil {
		info = errorInfo(err, t.Attempt)
		r.taskLog(t).Info("activity failed", "type", info.Type, "retryable", info.Retryable, "err", info.Message)
	}
	backoff, held := reportBackoff, false
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var serr error
		if err != nil {
			serr = r.store.FailTask(ctx, ref, info, finished)
		} else {
			serr = r.store.CompleteTask(ctx, ref, result, finished)
		}
		cancel()
		unavailable := errors.Is(serr, interpreter.ErrUnavailable)
		switch {
		case serr == nil:
			if held {
				r.taskLog(t).Info("the task's outcome was recorded once the store was back", "tries", try)
			}
			return
		case errors.Is(serr, interpreter.ErrDuplicate):
			r.taskLog(t).Info("the task was already completed; this outcome is ignored")
			return
		case errors.Is(serr, interpreter.ErrInstanceFinished):
			r.taskLog(t).Info("the task's instance has ended; this outcome is ignored")
			return
		case errors.Is(serr, interpreter.ErrNotFound):
			r.taskLog(t).Warn("the store does not know the task; its outcome is dropped", "err", serr)
			return
		case base.Err() != nil:
			r.taskLog(t).Error("stopping with the task's outcome unrecorded; it runs again after its lease", "err", serr)
			return
		case !unavailable && try >= reportTries:
			r.taskLog(t).Error("cannot record the task's outcome; it runs again after its lease", "err", serr)
			return
		case unavailable && !held:
			held = true
			r.taskLog(t).Warn("the store is unavailable; holding the task's outcome until it is back", "err", serr)
		case !unavailable:
			r.taskLog(t).Warn("recording the task's outcome failed; retrying", "err", serr, "in", backoff)
		}
		interpreter.Sleep(base, backoff)
		backoff = min(2*backoff, reportBackoffMax)
	}
}

// How report retries: reportTries tries for errors other than an
// unavailable store, the wait doubling from reportBackoff up to
// reportBackoffMax (so a store that comes back gets the outcome within a
// second).
const (
	reportTries      = 5
	reportBackoff    = 100 * time.Millisecond
	reportBackoffMax = time.Second
)

// heartbeatLoop renews the leases of the tasks this runtime holds, queued
// or running, once they are Lease/4 old. It looks every Lease/8, so no
// lease goes unrenewed for more than 3/8 of it; a task done within Lease/4
// costs no heartbeat at all, and the renewals due together go in one
// round trip.
//
// A task whose activity has a heartbeat timeout is renewed every third of
// it instead, when that is sooner, and looked at every sixth: the renewal
// is the heartbeat the interpreter's timer checks.
func (r *Runtime) heartbeatLoop(ctx context.Context) {
	tick := time.NewTimer(r.tickEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.renewDue(ctx, r.opts.Lease/4)
		r.renewSlots(ctx, r.opts.Lease/4)
		tick.Reset(r.tickEvery())
	}
}

// tickEvery is how often heartbeatLoop looks: Lease/8, or a sixth of the
// shortest heartbeat timeout among the held tasks.
func (r *Runtime) tickEvery() time.Duration {
	d := r.opts.Lease / 8
	r.mu.Lock()
	for _, h := range r.held {
		if hb := h.task.Schedule.Heartbeat; hb > 0 {
			d = min(d, hb/6)
		}
	}
	r.mu.Unlock()
	return max(d, time.Millisecond)
}

// renewAge is how old h's lease may grow before renewDue renews it.
func renewAge(h *held, age time.Duration) time.Duration {
	if hb := h.task.Schedule.Heartbeat; hb > 0 {
		return min(age, hb/3)
	}
	return age
}

// renewDue renews the leases at least age old.
func (r *Runtime) renewDue(ctx context.Context, age time.Duration) {
	r.renewing.Lock()
	defer r.renewing.Unlock()
	now := r.opts.Clock()
	var due []*held
	var refs []interpreter.TaskRef
	r.mu.Lock()
	for ref, h := range r.held {
		if now.Sub(h.renewed) >= renewAge(h, age) {
			due, refs = append(due, h), append(refs, ref)
		}
	}
	r.mu.Unlock()
	if len(due) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, max(age, time.Millisecond))
	errs := r.store.ExtendTasks(cctx, r.opts.Consumer, refs)
	cancel()
	failed := 0
	var first error
	r.mu.Lock()
	for i, h := range due {
		switch err := errs[i]; {
		case err == nil:
			if now.After(h.renewed) {
				h.renewed = now
			}
		case errors.Is(err, interpreter.ErrInstanceFinished):
			// Withdrawn, and the notice was missed: stop it now.
			r.stopHeld(refs[i], h, errWithdrawn)
		case errors.Is(err, interpreter.ErrNotFound), errors.Is(err, interpreter.ErrConflict):
			// Finished meanwhile (then this is moot), withdrawn after its
			// attempt timed out, or taken over by another runtime after a
			// missed heartbeat: stop running it, or never start it.
			r.stopHeld(refs[i], h, errLeaseLost)
		default:
			failed++
			first = cmp.Or(first, err)
		}
	}
	r.mu.Unlock()
	if failed > 0 && ctx.Err() == nil {
		r.log.Warn("extending task leases failed", "tasks", failed, "err", first)
	}
}
