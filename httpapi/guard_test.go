package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// hangingBackend never answers FetchStatus, whatever its context says, as a
// store client that ignores deadlines would on a hung server.
type hangingBackend struct {
	*fakeBackend
	release chan struct{}
}

func (h *hangingBackend) FetchStatus(context.Context, interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	<-h.release
	return nil, interpreter.ErrNotFound
}

func TestHungStoreAnswers503(t *testing.T) {
	hb := &hangingBackend{fakeBackend: newFake(), release: make(chan struct{})}
	defer close(hb.release)
	h := newHarnessWith(t, func(c *Config) { c.Backend = hb; c.StoreTimeout = 20 * time.Millisecond })
	r := h.do("GET", df+"/instances/x", nil)
	if r.code != 503 || r.errBody(t).Error != "timeout" || r.header.Get("Retry-After") == "" {
		t.Fatalf("hung store: %d %s %v", r.code, r.body, r.header)
	}
}

// downBackend fails every call as a store whose server is gone.
type downBackend struct {
	*fakeBackend
	err error
}

func (d *downBackend) FetchStatus(context.Context, interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	return nil, d.err
}

// reportingBackend knows its own unavailable errors.
type reportingBackend struct{ downBackend }

func (reportingBackend) Unavailable(err error) bool { return strings.HasPrefix(err.Error(), "LOADING") }

func TestUnreachableStoreAnswers503(t *testing.T) {
	for _, c := range []struct {
		name string
		be   Backend
		want int
	}{
		{"refused", &downBackend{newFake(), &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, 503},
		{"reported", &reportingBackend{downBackend{newFake(), errors.New("LOADING Redis is loading the dataset in memory")}}, 503},
		{"other", &downBackend{newFake(), errors.New("WRONGTYPE")}, 500},
	} {
		h := newHarnessWith(t, func(cfg *Config) { cfg.Backend = c.be })
		r := h.do("GET", df+"/instances/x", nil)
		if r.code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.code, r.body, c.want)
			continue
		}
		e := r.errBody(t)
		if c.want == 503 && (e.Error != "unavailable" || strings.Contains(e.Message, "dial") || r.header.Get("Retry-After") == "") {
			t.Errorf("%s: %d %s %v", c.name, r.code, r.body, r.header)
		}
	}
}

// deadlineBackend honours context deadlines, as redisstore.Store does with
// a go-redis client that has ContextTimeoutEnabled: its FetchStatus gives up
// at the deadline with the error a timed-out socket read gives.
type deadlineBackend struct {
	*fakeBackend
	panic     bool
	onHandler bool // FetchStatus ran on the handler's goroutine
}

func (*deadlineBackend) HonoursDeadlines() bool { return true }

func (d *deadlineBackend) FetchStatus(ctx context.Context, _ interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	// A call in a goroutine of its own has no handler below it.
	d.onHandler = strings.Contains(string(debug.Stack()), "httpapi.(*server).status(")
	if d.panic {
		panic("boom in the store")
	}
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("the store call has no deadline")
	}
	<-ctx.Done()
	return nil, fmt.Errorf("redisstore: fetching status: %w", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})
}

func TestDeadlineStoreCalledDirectly(t *testing.T) {
	db := &deadlineBackend{fakeBackend: newFake()}
	h := newHarnessWith(t, func(c *Config) { c.Backend = db; c.StoreTimeout = 20 * time.Millisecond })
	r := h.do("GET", df+"/instances/x", nil)
	// A timed-out read is a net.Error, but here it is the deadline, not
	// an unreachable store: "timeout", not "unavailable".
	if r.code != 503 || r.errBody(t).Error != "timeout" || r.header.Get("Retry-After") == "" {
		t.Fatalf("store at its deadline: %d %s %v", r.code, r.body, r.header)
	}
	if !db.onHandler {
		t.Error("a store that honours deadlines was called in a goroutine of its own")
	}
}

func TestDeadlineStorePanicIsJSON500(t *testing.T) {
	db := &deadlineBackend{fakeBackend: newFake(), panic: true}
	h := newHarnessWith(t, func(c *Config) { c.Backend = db })
	r := h.do("GET", df+"/instances/x", nil)
	if r.code != 500 || r.errBody(t).Error != "internal" {
		t.Fatalf("panic: %d %s", r.code, r.body)
	}
	if !strings.Contains(h.log.String(), "panic in a store call") || !strings.Contains(h.log.String(), "boom in the store") {
		t.Errorf("the guard did not log the panic: %s", h.log)
	}
}

// batchedBackend has a batched status read. Its plain one, once hold is
// set, signals entered and waits for release.
type batchedBackend struct {
	*fakeBackend
	hold             atomic.Bool
	entered, release chan struct{}
	plain, batched   atomic.Int64
}

func (b *batchedBackend) FetchStatus(ctx context.Context, id interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	b.plain.Add(1)
	if b.hold.Load() {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.fakeBackend.FetchStatus(ctx, id)
}

func (b *batchedBackend) FetchStatusBatched(ctx context.Context, id interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	b.batched.Add(1)
	return b.fakeBackend.FetchStatus(ctx, id)
}

// TestStatusReadsBatchedInCompany: a status read alone makes its own round
// trip; one that finds another in flight is batched.
func TestStatusReadsBatchedInCompany(t *testing.T) {
	bb := &batchedBackend{fakeBackend: newFake(), entered: make(chan struct{}), release: make(chan struct{})}
	bb.insts["x"] = &interpreter.InstanceStatus{ID: "x", Name: "Hello", Status: interpreter.StatusRunning}
	h := newHarnessWith(t, func(c *Config) { c.Backend = bb })
	if r := h.do("GET", df+"/instances/x", nil); r.code != 202 || bb.plain.Load() != 1 || bb.batched.Load() != 0 {
		t.Fatalf("a lone GET status: %d %s; %d plain, %d batched reads", r.code, r.body, bb.plain.Load(), bb.batched.Load())
	}
	bb.hold.Store(true)
	first := make(chan reply)
	go func() { first <- h.do("GET", df+"/instances/x", nil) }()
	<-bb.entered // the first read is in flight
	bb.hold.Store(false)
	r := h.do("GET", df+"/instances/x", nil)
	close(bb.release)
	r1 := <-first
	if r.code != 202 || r1.code != 202 || !strings.Contains(string(r.body), `"instanceId":"x"`) {
		t.Fatalf("GET status: %d %s, %d %s", r.code, r.body, r1.code, r1.body)
	}
	if bb.plain.Load() != 2 || bb.batched.Load() != 1 {
		t.Fatalf("two GET status at once: %d plain, %d batched reads; want 2 and 1", bb.plain.Load(), bb.batched.Load())
	}
}
