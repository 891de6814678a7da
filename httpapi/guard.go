package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

const (
	// DefaultStoreTimeout bounds one store call when Config.StoreTimeout is 0.
	DefaultStoreTimeout = 5 * time.Second
	// bulkFactor stretches the bound for calls that work through many
	// instances in several round trips (purge by time range).
	bulkFactor = 12
)

// guarded wraps the Backend and the Catalog so that no request waits on the
// store for longer than a bound (503 "timeout" past it), and a panic inside
// a store call is a logged error naming the call instead of a crash. The
// calls run on the handler's goroutine with a deadline, which the Backend
// contract has them return by: a goroutine per call, its channel and its
// timer were four tenths of GET status's CPU.
type guarded struct {
	be      Backend
	cat     Catalog
	timeout time.Duration
	log     *slog.Logger

	// defs keeps what the Catalog answered: a definition is immutable
	// under its hash, and a start asks for the latest one each time, so
	// the Catalog (and a deadline for the store call it may make) is
	// asked once per definition instead: the deadline's context and
	// timer were a tenth of a start's work in this package.
	defsMu sync.RWMutex
	defs   map[defKey]*dsl.Workflow
}

type defKey struct{ name, hash string }

// bound runs f, the store call op, with a deadline of d.
func bound[T any](g *guarded, ctx context.Context, op string, d time.Duration, f func(context.Context) (T, error)) (v T, err error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	defer g.recovered(op, &err)
	if v, err = f(ctx); errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("store call %s: %w", op, err)
	}
	return v, err
}

// call is bound for calls that return only an error.
func call(g *guarded, ctx context.Context, op string, f func(context.Context) error) error {
	_, err := bound(g, ctx, op, g.timeout, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// recovered, deferred, logs a panic in the store call op and makes it the
// call's error.
func (g *guarded) recovered(op string, err *error) {
	if p := recover(); p != nil {
		g.log.Error("panic in a store call", "op", op, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		*err = fmt.Errorf("store call %s panicked: %v", op, p)
	}
}

func (g *guarded) CreateInstance(ctx context.Context, n interpreter.NewInstance) error {
	return call(g, ctx, "create", func(ctx context.Context) error { return g.be.CreateInstance(ctx, n) })
}
func (g *guarded) RaiseEvent(ctx context.Context, id interpreter.InstanceID, name string, data json.RawMessage, now time.Time) error {
	return call(g, ctx, "raise", func(ctx context.Context) error { return g.be.RaiseEvent(ctx, id, name, data, now) })
}
func (g *guarded) SendControl(ctx context.Context, id interpreter.InstanceID, ev interpreter.Event) error {
	return call(g, ctx, "control", func(ctx context.Context) error { return g.be.SendControl(ctx, id, ev) })
}
func (g *guarded) FetchStatus(ctx context.Context, id interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	return bound(g, ctx, "status", g.timeout, func(ctx context.Context) (*interpreter.InstanceStatus, error) { return g.be.FetchStatus(ctx, id) })
}
func (g *guarded) FetchHistory(ctx context.Context, id interpreter.InstanceID) ([]interpreter.HistoryEvent, error) {
	return bound(g, ctx, "history", g.timeout, func(ctx context.Context) ([]interpreter.HistoryEvent, error) { return g.be.FetchHistory(ctx, id) })
}
func (g *guarded) ListInstances(ctx context.Context, q interpreter.ListQuery) (items []interpreter.InstanceStatus, next string, err error) {
	err = call(g, ctx, "list", func(ctx context.Context) (err error) {
		items, next, err = g.be.ListInstances(ctx, q)
		return err
	})
	return items, next, err
}
func (g *guarded) Purge(ctx context.Context, id interpreter.InstanceID) error {
	return call(g, ctx, "purge", func(ctx context.Context) error { return g.be.Purge(ctx, id) })
}
func (g *guarded) PurgeMany(ctx context.Context, from, to time.Time, statuses []interpreter.RuntimeStatus) (int, error) {
	return bound(g, ctx, "purge-many", bulkFactor*g.timeout, func(ctx context.Context) (int, error) { return g.be.PurgeMany(ctx, from, to, statuses) })
}
func (g *guarded) PutDefinition(ctx context.Context, name, hash string, src []byte, now time.Time) (bool, error) {
	return bound(g, ctx, "put-definition", g.timeout, func(ctx context.Context) (bool, error) { return g.be.PutDefinition(ctx, name, hash, src, now) })
}
func (g *guarded) LoadDefinition(ctx context.Context, name, hash string) ([]byte, error) {
	return bound(g, ctx, "load-definition", g.timeout, func(ctx context.Context) ([]byte, error) { return g.be.LoadDefinition(ctx, name, hash) })
}

// LatestDefinition is bounded by a lazyDeadline: the store answers it
// from a cache in process nearly always, without looking at its context,
// and a deadline context's timer, channel and closures were the most of
// what a start paid for it.
func (g *guarded) LatestDefinition(ctx context.Context, name string) (_ string, err error) {
	lc := &lazyDeadline{parent: ctx, deadline: time.Now().Add(g.timeout)}
	defer lc.end()
	defer g.recovered("latest-definition", &err)
	h, err := g.be.LatestDefinition(lc, name)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("store call %s: %w", "latest-definition", err)
	}
	return h, err
}

// lazyDeadline is context.WithDeadline(parent, deadline) made only when a
// callee first asks for Done, Err or Value: a call that never looks
// (one answered from memory) pays for this struct alone, one that does
// gets the same context as bound gives, armed at its first look (the
// deadline set when the call began). Its Deadline is known at once, so a
// client that bounds its socket by it needs no arming.
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time
	once     sync.Once
	ctx      context.Context // set by once: the armed context, or endedCtx
	cancel   context.CancelFunc
}

// endedCtx is what a lazyDeadline never armed is after its call ended:
// canceled, as a WithDeadline context is once the call's cancel ran.
var endedCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (c *lazyDeadline) armed() context.Context {
	c.once.Do(func() { c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline) })
	return c.ctx
}

// end is the call's cancel: it stops the timer when armed, and makes a
// late look find the context done.
func (c *lazyDeadline) end() {
	c.once.Do(func() { c.ctx = endedCtx })
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *lazyDeadline) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}
func (c *lazyDeadline) Done() <-chan struct{} { return c.armed().Done() }
func (c *lazyDeadline) Err() error            { return c.armed().Err() }

// Value arms too, so that context.Cause and a context made from this one
// find the armed context (the cancelCtx lookup is a Value), as they would
// find WithDeadline's. Once ended unarmed, values come from parent.
func (c *lazyDeadline) Value(key any) any {
	if ctx := c.armed(); c.cancel != nil {
		return ctx.Value(key)
	}
	return c.parent.Value(key)
}

func (c *lazyDeadline) String() string { return "httpapi.lazyDeadline" }
func (g *guarded) DescribeDefinition(ctx context.Context, name string) (*interpreter.DefinitionInfo, error) {
	return bound(g, ctx, "describe-definition", g.timeout, func(ctx context.Context) (*interpreter.DefinitionInfo, error) {
		return g.be.DescribeDefinition(ctx, name)
	})
}
func (g *guarded) ListDefinitions(ctx context.Context) ([]interpreter.DefinitionInfo, error) {
	return bound(g, ctx, "list-definitions", g.timeout, g.be.ListDefinitions)
}
func (g *guarded) Ping(ctx context.Context) error { return call(g, ctx, "ping", g.be.Ping) }

// Get is the Catalog's, bounded: a definition not yet cached is read from
// the store.
func (g *guarded) Get(ctx context.Context, name, hash string) (*dsl.Workflow, error) {
	k := defKey{name, hash}
	g.defsMu.RLock()
	def := g.defs[k]
	g.defsMu.RUnlock()
	if def != nil {
		return def, nil
	}
	def, err := bound(g, ctx, "definition", g.timeout, func(ctx context.Context) (*dsl.Workflow, error) { return g.cat.Get(ctx, name, hash) })
	if err == nil && def != nil {
		g.defsMu.Lock()
		if g.defs == nil {
			g.defs = map[defKey]*dsl.Workflow{}
		}
		g.defs[k] = def
		g.defsMu.Unlock()
	}
	return def, err
}

// subscription is one WatchStatus answer.
type subscription struct {
	ch   <-chan interpreter.StatusChange
	stop func()
	err  error
}

// WatchStatus bounds only the subscribing: the subscription lives as long
// as ctx, so ctx has no deadline for the store to return by, and the
// subscribing runs in a goroutine the handler stops waiting for.
func (g *guarded) WatchStatus(ctx context.Context, id interpreter.InstanceID) (<-chan interpreter.StatusChange, func(), error) {
	life, end := context.WithCancel(ctx)
	done := make(chan subscription, 1)
	go func() {
		var s subscription
		defer func() { done <- s }()
		defer g.recovered("watch", &s.err)
		s.ch, s.stop, s.err = g.be.WatchStatus(life, id)
	}()
	wait, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	select {
	case s := <-done:
		if s.err != nil {
			end()
			return nil, nil, s.err
		}
		return s.ch, func() { s.stop(); end() }, nil
	case <-wait.Done():
		end() // given up: a subscription that comes ends with life
		return nil, nil, fmt.Errorf("store call watch: %w", wait.Err())
	}
}
