package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// DefaultStoreTimeout bounds one store call when Config.StoreTimeout is 0.
const DefaultStoreTimeout = 5 * time.Second

// bulkFactor stretches the bound for calls that work through many
// instances in several round trips (purge by time range).
const bulkFactor = 12

// UnavailableReporter is implemented by a Backend that can tell a failure
// to reach its store (connection refused or lost, the server loading its
// data, a pool timeout) from other errors; such failures answer 503
// "unavailable". redisstore.Store implements it.
type UnavailableReporter interface {
	Unavailable(err error) bool
}

// errUnavailable marks a store failure that is the store being out of
// reach, not a fault of the request: 503, and worth retrying.
type errUnavailable struct{ cause error }

func (e *errUnavailable) Error() string {
	return "the store is unavailable, retry later: " + e.cause.Error()
}
func (e *errUnavailable) Unwrap() error { return e.cause }

// unreachable reports the failures of any network store: the connection
// was refused, reset, cut or timed out.
func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false // a net.Error too, but the deadline is the caller's
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// DeadlineHonouring is implemented by a Backend (or a Catalog) whose calls
// all return by their context's deadline, whatever the store does: its
// client bounds waits for a connection, dials, writes and reads by the
// deadline. redisstore.Store says so when its go-redis client has
// ContextTimeoutEnabled.
type DeadlineHonouring interface {
	HonoursDeadlines() bool
}

// honours reports whether v is a DeadlineHonouring that honours them.
func honours(v any) bool {
	d, ok := v.(DeadlineHonouring)
	return ok && d.HonoursDeadlines()
}

// guarded wraps the Backend and the Catalog so that no request waits on the
// store for longer than a bound (503 "timeout" past it). A store that
// honours context deadlines is called directly with one; any other is
// called in its own goroutine that the handler stops waiting for at the
// deadline, whatever the store's client does with contexts. It also marks
// unreachable-store errors (503 "unavailable") and turns a panic inside a
// store call into a logged error instead of a crash.
type guarded struct {
	be      Backend
	cat     Catalog
	timeout time.Duration
	log     *slog.Logger
	// beDirect and catDirect: be and cat honour deadlines, so calls to
	// them need no goroutine of their own. A goroutine, its channel and
	// its timer were four tenths of GET status's CPU.
	beDirect, catDirect bool
	// batched is be when it batches status reads, nil otherwise;
	// statusReads counts the status reads in flight.
	batched     BatchedStatus
	statusReads atomic.Int64
}

// BatchedStatus is implemented by a Backend whose status reads from many
// concurrent requests can share round trips to the store (redisstore.Store
// does, through go-redis's autopipelining). The API's status reads (GET
// status above all, its busiest request) go through it while others are
// in flight.
type BatchedStatus interface {
	// FetchStatusBatched is FetchStatus, batched with concurrent callers'.
	FetchStatusBatched(ctx context.Context, id interpreter.InstanceID) (*interpreter.InstanceStatus, error)
}

// outcome is one store call's result.
type outcome[T any] struct {
	v   T
	err error
}

// bound runs f with a deadline of d and returns its result, or the context
// error when the deadline (or the client) ends the wait first. With direct
// set, f honours the deadline and runs on the caller's goroutine; else it
// runs in its own, and a call still running at the deadline finishes in
// the background, its result dropped.
func bound[T any](g *guarded, direct bool, ctx context.Context, op string, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	if direct {
		return boundDirect(g, ctx, op, d, f)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	done := make(chan outcome[T], 1)
	go func() {
		defer cancel()
		var o outcome[T]
		defer func() {
			if v := recover(); v != nil {
				o = outcome[T]{err: g.panicked(op, v)}
			}
			done <- o
		}()
		o.v, o.err = f(ctx)
	}()
	select {
	case o := <-done:
		return o.v, g.classify(o.err)
	case <-ctx.Done():
		// A result that arrived at the same moment wins over the deadline.
		select {
		case o := <-done:
			return o.v, g.classify(o.err)
		default:
		}
		var zero T
		return zero, fmt.Errorf("store call %s: %w", op, ctx.Err())
	}
}

// boundDirect is bound for a store that honours deadlines.
func boundDirect[T any](g *guarded, ctx context.Context, op string, d time.Duration, f func(context.Context) (T, error)) (v T, err error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, g.panicked(op, p)
		}
	}()
	v, err = f(ctx)
	if err != nil && ctx.Err() != nil && endedByDeadline(err) {
		// The store gave up because the deadline passed: a timed-out
		// read is a net.Error, which would read as "unavailable", but
		// the store only ran out of the time it was given.
		var zero T
		return zero, fmt.Errorf("store call %s: %w", op, ctx.Err())
	}
	return v, g.classify(err)
}

// endedByDeadline reports whether err is a call giving up at its deadline:
// a context error, or an I/O timeout (the client set the socket's deadline
// from the context's).
func endedByDeadline(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// panicked logs a panic in a store call and returns it as an error.
func (g *guarded) panicked(op string, v any) error {
	g.log.Error("panic in a store call", "op", op, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return fmt.Errorf("store call %s panicked: %v", op, v)
}

// classify marks errors that mean the store is out of reach.
func (g *guarded) classify(err error) error {
	if err == nil {
		return nil
	}
	var ue *errUnavailable
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	if r, ok := g.be.(UnavailableReporter); ok && r.Unavailable(err) {
		return &errUnavailable{err}
	}
	if unreachable(err) {
		return &errUnavailable{err}
	}
	return err
}

// call is bound for calls that return only an error.
func call(g *guarded, ctx context.Context, op string, f func(context.Context) error) error {
	_, err := bound(g, g.beDirect, ctx, op, g.timeout, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f(ctx)
	})
	return err
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
	// Batching pays only with company: a read alone would hand its
	// command to the batcher's goroutine and back for nothing (one read
	// at a time, BenchmarkGetStatus/handler: ~52 µs of CPU per request on
	// its own round trip, ~83 batched), so only reads that find another
	// in flight are batched.
	batch := false
	if g.batched != nil {
		defer g.statusReads.Add(-1)
		batch = g.statusReads.Add(1) > 1
	}
	return bound(g, g.beDirect, ctx, "status", g.timeout, func(ctx context.Context) (*interpreter.InstanceStatus, error) {
		if batch {
			return g.batched.FetchStatusBatched(ctx, id)
		}
		return g.be.FetchStatus(ctx, id)
	})
}

func (g *guarded) FetchHistory(ctx context.Context, id interpreter.InstanceID) ([]interpreter.HistoryEvent, error) {
	return bound(g, g.beDirect, ctx, "history", g.timeout, func(ctx context.Context) ([]interpreter.HistoryEvent, error) {
		return g.be.FetchHistory(ctx, id)
	})
}

// page is one ListInstances answer.
type page struct {
	items []interpreter.InstanceStatus
	next  string
}

func (g *guarded) ListInstances(ctx context.Context, q interpreter.ListQuery) ([]interpreter.InstanceStatus, string, error) {
	p, err := bound(g, g.beDirect, ctx, "list", g.timeout, func(ctx context.Context) (page, error) {
		items, next, err := g.be.ListInstances(ctx, q)
		return page{items, next}, err
	})
	return p.items, p.next, err
}

func (g *guarded) Purge(ctx context.Context, id interpreter.InstanceID) error {
	return call(g, ctx, "purge", func(ctx context.Context) error { return g.be.Purge(ctx, id) })
}

func (g *guarded) PurgeMany(ctx context.Context, from, to time.Time, statuses []interpreter.RuntimeStatus) (int, error) {
	return bound(g, g.beDirect, ctx, "purge-many", bulkFactor*g.timeout, func(ctx context.Context) (int, error) {
		return g.be.PurgeMany(ctx, from, to, statuses)
	})
}

func (g *guarded) PutDefinition(ctx context.Context, name, hash string, src []byte, now time.Time) (bool, error) {
	return bound(g, g.beDirect, ctx, "put-definition", g.timeout, func(ctx context.Context) (bool, error) {
		return g.be.PutDefinition(ctx, name, hash, src, now)
	})
}

func (g *guarded) LoadDefinition(ctx context.Context, name, hash string) ([]byte, error) {
	return bound(g, g.beDirect, ctx, "load-definition", g.timeout, func(ctx context.Context) ([]byte, error) {
		return g.be.LoadDefinition(ctx, name, hash)
	})
}

func (g *guarded) LatestDefinition(ctx context.Context, name string) (string, error) {
	return bound(g, g.beDirect, ctx, "latest-definition", g.timeout, func(ctx context.Context) (string, error) {
		return g.be.LatestDefinition(ctx, name)
	})
}

func (g *guarded) DescribeDefinition(ctx context.Context, name string) (*interpreter.DefinitionInfo, error) {
	return bound(g, g.beDirect, ctx, "describe-definition", g.timeout, func(ctx context.Context) (*interpreter.DefinitionInfo, error) {
		return g.be.DescribeDefinition(ctx, name)
	})
}

func (g *guarded) ListDefinitions(ctx context.Context) ([]interpreter.DefinitionInfo, error) {
	return bound(g, g.beDirect, ctx, "list-definitions", g.timeout, func(ctx context.Context) ([]interpreter.DefinitionInfo, error) {
		return g.be.ListDefinitions(ctx)
	})
}

func (g *guarded) Ping(ctx context.Context) error {
	return call(g, ctx, "ping", func(ctx context.Context) error { return g.be.Ping(ctx) })
}

// subscription is one WatchStatus answer.
type subscription struct {
	ch   <-chan interpreter.StatusChange
	stop func()
}

// WatchStatus bounds only the subscribing: the subscription itself lives
// as long as ctx, as the Backend's does. It always subscribes in a
// goroutine of its own: the context it subscribes with has no deadline for
// a store to honour.
func (g *guarded) WatchStatus(ctx context.Context, id interpreter.InstanceID) (<-chan interpreter.StatusChange, func(), error) {
	life, end := context.WithCancel(ctx)
	done := make(chan outcome[subscription], 1)
	go func() {
		var o outcome[subscription]
		defer func() {
			if v := recover(); v != nil {
				o = outcome[subscription]{err: g.panicked("watch", v)}
			}
			done <- o
		}()
		ch, stop, err := g.be.WatchStatus(life, id)
		o = outcome[subscription]{subscription{ch, stop}, err}
	}()
	timer := time.NewTimer(g.timeout)
	defer timer.Stop()
	var err error
	select {
	case o := <-done:
		if o.err != nil {
			end()
			return nil, nil, g.classify(o.err)
		}
		return o.v.ch, func() { o.v.stop(); end() }, nil
	case <-timer.C:
		err = fmt.Errorf("store call watch: %w", context.DeadlineExceeded)
	case <-ctx.Done():
		err = fmt.Errorf("store call watch: %w", ctx.Err())
	}
	// Given up: end the subscription whenever it comes.
	end()
	go func() {
		if o := <-done; o.err == nil && o.v.stop != nil {
			o.v.stop()
		}
	}()
	return nil, nil, err
}

// Get is the Catalog's, bounded: a definition not yet cached is read from
// the store.
func (g *guarded) Get(ctx context.Context, name, hash string) (*dsl.Workflow, error) {
	return bound(g, g.catDirect, ctx, "definition", g.timeout, func(ctx context.Context) (*dsl.Workflow, error) {
		return g.cat.Get(ctx, name, hash)
	})
}
