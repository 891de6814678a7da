package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// TaskStore is what the Runtime needs from durable storage (redisstore's
// Store implements it). Leases are the store's: a task read or reclaimed by
// a consumer is held by it until completed or failed, and another consumer
// may reclaim it once it has gone minIdle without an ExtendTask.
type TaskStore interface {
	// ReadTasks leases up to max new tasks of queue to consumer, waiting
	// up to block for the first.
	ReadTasks(ctx context.Context, consumer, queue string, max int, block time.Duration) ([]interpreter.Task, error)
	// ReclaimTasks leases to consumer up to max tasks of queue whose
	// holder has not completed, failed or extended them for minIdle.
	ReclaimTasks(ctx context.Context, consumer, queue string, minIdle time.Duration, max int) ([]interpreter.Task, error)
	// CompleteTask and FailTask record the outcome and queue it for the
	// instance, atomically with acknowledging the task. A task already
	// completed or failed is interpreter.ErrDuplicate and writes nothing.
	CompleteTask(ctx context.Context, ref interpreter.TaskRef, result json.RawMessage, now time.Time) error
	FailTask(ctx context.Context, ref interpreter.TaskRef, info interpreter.ErrorInfo, now time.Time) error
	// ExtendTask renews consumer's lease (a heartbeat). When consumer no
	// longer holds the task it returns interpreter.ErrNotFound (or
	// interpreter.ErrConflict when another consumer holds it now).
	ExtendTask(ctx context.Context, consumer string, ref interpreter.TaskRef) error
}

// Options configure a Runtime. Zero values take the defaults.
type Options struct {
	// Consumer names this runtime among the consumers of the task
	// streams; it must be unique among live runtimes. Default:
	// host-pid-random.
	Consumer string
	// Concurrency is the most tasks run at once (default 8).
	Concurrency int
	// Lease is how long a task may go without a heartbeat before another
	// runtime takes it over (default 30s). Running tasks are extended
	// every Lease/3, so it bounds how long a crashed runtime's tasks wait,
	// not how long a task may run.
	Lease time.Duration
	// Block is how long one read waits for new tasks (default 2s); it also
	// bounds how long Run takes to notice that its context ended.
	Block time.Duration
	// ShutdownGrace is how long Run lets running tasks finish once its
	// context ends (default 10s). Then their contexts are cancelled and
	// they are abandoned: their tasks stay leased until the lease expires
	// and another runtime runs them again.
	ShutdownGrace time.Duration
	// Clock gives the time recorded with completions (default time.Now).
	Clock func() time.Time
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// HTTPClient makes the requests of http bindings (default: a client
	// with no timeout of its own; each request has its binding's).
	HTTPClient *http.Client
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

	mu       sync.Mutex
	inflight map[interpreter.TaskRef]*running
	active   bool // Run is running
}

// running is one task being run.
type running struct {
	ref    interpreter.TaskRef
	cancel context.CancelCauseFunc // stops the handler: lease lost or abandoned
}

// Causes of a handler's cancellation other than its timeout; a failure
// that follows them is not reported (the task belongs to another runtime,
// or will once its lease expires).
var (
	errLeaseLost = errors.New("activity: the task's lease was lost to another runtime")
	errAbandoned = errors.New("activity: the runtime is shutting down")
)

// NewRuntime returns a Runtime over store that reads workflow definitions
// (for the activities' bindings) from catalog and Go handlers from reg (nil
// for none). Run starts it.
func NewRuntime(store TaskStore, catalog *interpreter.Catalog, reg *Registry, opts Options) *Runtime {
	if opts.Consumer == "" {
		host, _ := os.Hostname()
		opts.Consumer = fmt.Sprintf("%s-%d-%06x", host, os.Getpid(), rand.Uint32()&0xffffff)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
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
	if reg == nil {
		reg = NewRegistry()
	}
	return &Runtime{
		store: store, cat: catalog, reg: reg, opts: opts, http: client,
		log:      opts.Logger.With("component", "activity", "consumer", opts.Consumer),
		inflight: map[interpreter.TaskRef]*running{},
	}
}

// Consumer returns the name this runtime leases tasks under.
func (r *Runtime) Consumer() string { return r.opts.Consumer }

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

	r.readLoop(ctx, &tasks)

	done := make(chan struct{})
	go func() { tasks.Wait(); close(done) }()
	grace := time.NewTimer(r.opts.ShutdownGrace)
	select {
	case <-done:
	case <-grace.C:
		r.mu.Lock()
		n := len(r.inflight)
		for _, run := range r.inflight {
			run.cancel(errAbandoned)
		}
		r.mu.Unlock()
		r.log.Warn("abandoning running tasks at shutdown; another runtime takes them over when their lease expires", "tasks", n)
		<-done
	}
	grace.Stop()
	stopHB()
	<-hbDone
	return nil
}

// readLoop leases tasks while slots are free and starts them.
func (r *Runtime) readLoop(ctx context.Context, tasks *sync.WaitGroup) {
	slots := make(chan struct{}, r.opts.Concurrency) // one token per task slot in use
	release := func(n int) {
		for range n {
			<-slots
		}
	}
	reclaimEvery := min(r.opts.Lease/2, 5*time.Second)
	var lastReclaim time.Time
	reclaimSoon := true // a crashed predecessor may have left tasks
	backoff := 50 * time.Millisecond
	for {
		// Wait for one free slot, then take every free one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	grab:
		for n < r.opts.Concurrency {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break grab
			}
		}

		var got []interpreter.Task
		var err error
		if reclaimSoon || time.Since(lastReclaim) >= reclaimEvery {
			got, err = r.store.ReclaimTasks(ctx, r.opts.Consumer, interpreter.LocalQueue, r.opts.Lease, n)
			lastReclaim = time.Now()
			reclaimSoon = len(got) == n // there may be more
			if len(got) > 0 {
				r.log.Debug("took over tasks whose lease expired or that the store handed back", "tasks", len(got))
			}
		}
		if err == nil && len(got) < n {
			block := r.opts.Block
			if len(got) > 0 {
				block = 0
			}
			want := n - len(got)
			var more []interpreter.Task
			more, err = r.store.ReadTasks(ctx, r.opts.Consumer, interpreter.LocalQueue, want, block)
			got = append(got, more...)
			// A full read may have handed a surplus back to the store,
			// for the next reclaim to take.
			reclaimSoon = reclaimSoon || len(more) == want
		}
		started := 0
		for _, t := range got {
			if r.start(ctx, t, tasks, release) {
				started++
			}
		}
		release(n - started)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("reading tasks failed; retrying", "err", err, "in", backoff)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
	}
}

// start runs t in its own goroutine, holding one slot; false when t is
// already running here (a reclaim of our own task whose heartbeat was
// late: it stays leased to us).
func (r *Runtime) start(ctx context.Context, t interpreter.Task, tasks *sync.WaitGroup, release func(int)) bool {
	// The handler keeps ctx's values but not its end: shutdown has a grace
	// period.
	base, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	run := &running{ref: t.Ref, cancel: cancel}
	r.mu.Lock()
	if _, dup := r.inflight[t.Ref]; dup {
		r.mu.Unlock()
		cancel(nil)
		return false
	}
	r.inflight[t.Ref] = run
	r.mu.Unlock()
	tasks.Add(1)
	go func() {
		defer tasks.Done()
		defer release(1)
		defer func() {
			r.mu.Lock()
			delete(r.inflight, t.Ref)
			r.mu.Unlock()
			cancel(nil)
		}()
		r.handle(base, t)
	}()
	return true
}

// outcome is what running a task produced.
type outcome struct {
	result json.RawMessage
	err    error
}

// handle runs one task and reports its outcome. base is cancelled when the
// lease is lost or the task abandoned.
func (r *Runtime) handle(base context.Context, it interpreter.Task) {
	s := it.Schedule
	t := Task{
		ID: s.TaskID, Activity: s.Activity, Input: s.Input, Attempt: s.Attempt,
		InstanceID: string(s.Instance), Workflow: s.Workflow, StepID: string(s.StepID),
	}
	if len(t.Input) == 0 {
		t.Input = json.RawMessage("null")
	}
	log := r.log.With("instance", t.InstanceID, "task", t.ID, "activity", t.Activity, "attempt", t.Attempt)

	var binding *dsl.Binding
	if r.cat != nil && (s.Workflow != "" || s.DefHash != "") {
		def, err := r.cat.Get(base, s.Workflow, s.DefHash)
		switch {
		case errors.Is(err, interpreter.ErrNotFound):
			r.report(base, log, it.Ref, nil, &Error{Type: ErrTypeDefinition, Message: err.Error(), NonRetryable: true}, t.Attempt)
			return
		case err != nil:
			// Perhaps the store is away: leave the task leased; it runs
			// again when the lease expires.
			log.Warn("cannot read the task's workflow definition; leaving the task for a retry after its lease", "err", err)
			return
		}
		if o := def.Activities[s.Activity]; o != nil {
			binding = o.Binding
		}
	}

	hctx := base
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(base, s.Timeout)
		defer cancel()
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("activity handler panicked", "panic", p, "stack", string(debug.Stack()))
				done <- outcome{err: &Error{Type: ErrTypePanic, Message: fmt.Sprintf("activity %s panicked: %v", t.Activity, p)}}
			}
		}()
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
				log.Info("stopped waiting for the task", "why", context.Cause(base))
				return
			}
			// The timeout passed and the handler has not returned: report
			// it now. A handler that ignores ctx runs on, outside the
			// slots; its outcome is dropped.
			r.report(base, log, it.Ref, nil, timeoutError(t, s.Timeout), t.Attempt)
			return
		}
	}
	if o.err != nil {
		if base.Err() != nil {
			log.Info("the task was stopped", "why", context.Cause(base), "err", o.err)
			return
		}
		if hctx.Err() != nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
			o.err = timeoutError(t, s.Timeout)
		}
	}
	r.report(base, log, it.Ref, o.result, o.err, t.Attempt)
}

func timeoutError(t Task, d time.Duration) error {
	return &Error{Type: ErrTypeTimeout, Message: fmt.Sprintf("activity %s did not finish within its timeout of %s", t.Activity, d)}
}

// report records a task's result (err nil) or failure, retrying store
// errors for a while; if it never gets through, the lease expires and the
// task runs again elsewhere.
func (r *Runtime) report(base context.Context, log *slog.Logger, ref interpreter.TaskRef, result json.RawMessage, err error, attempt int) {
	var info interpreter.ErrorInfo
	if err != nil {
		info = errorInfo(err, attempt)
		log.Info("activity failed", "type", info.Type, "retryable", info.Retryable, "err", info.Message)
	}
	backoff := 100 * time.Millisecond
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var serr error
		if err != nil {
			serr = r.store.FailTask(ctx, ref, info, r.opts.Clock())
		} else {
			serr = r.store.CompleteTask(ctx, ref, result, r.opts.Clock())
		}
		cancel()
		switch {
		case serr == nil:
			return
		case errors.Is(serr, interpreter.ErrDuplicate):
			log.Info("the task was already completed; this outcome is ignored")
			return
		case errors.Is(serr, interpreter.ErrNotFound):
			log.Warn("the store does not know the task; its outcome is dropped", "err", serr)
			return
		case try == 5 || base.Err() != nil:
			log.Error("cannot record the task's outcome; it runs again after its lease", "err", serr)
			return
		}
		log.Warn("recording the task's outcome failed; retrying", "err", serr, "in", backoff)
		sleep(base, backoff)
		backoff *= 2
	}
}

// heartbeatLoop extends the lease of every running task every Lease/3.
func (r *Runtime) heartbeatLoop(ctx context.Context) {
	every := max(r.opts.Lease/3, time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		runs := make([]*running, 0, len(r.inflight))
		for _, run := range r.inflight {
			runs = append(runs, run)
		}
		r.mu.Unlock()
		for _, run := range runs {
			cctx, cancel := context.WithTimeout(ctx, every)
			err := r.store.ExtendTask(cctx, r.opts.Consumer, run.ref)
			cancel()
			switch {
			case err == nil:
			case errors.Is(err, interpreter.ErrNotFound), errors.Is(err, interpreter.ErrConflict):
				// Finished meanwhile (then this is moot) or taken over by
				// another runtime after a missed heartbeat.
				run.cancel(errLeaseLost)
			case ctx.Err() == nil:
				r.log.Warn("extending a task's lease failed", "instance", run.ref.Instance, "task", run.ref.TaskID, "err", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
