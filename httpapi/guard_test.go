package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// downBackend fails FetchStatus with err, as a store whose server is gone
// or cannot serve marks it (redisstore does so for a real Redis,
// TestStoppedRedisIsUnavailable and TestUnavailableReplies).
type downBackend struct {
	*fakeBackend
	err error
}

func (d *downBackend) FetchStatus(context.Context, interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	return nil, d.err
}

// unavailable marks err as the Backend contract has a store do.
func unavailable(err error) error { return fmt.Errorf("%w: %w", interpreter.ErrUnavailable, err) }

func TestUnreachableStoreAnswers503(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"refused", unavailable(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), 503},
		{"loading", unavailable(errors.New("LOADING Redis is loading the dataset in memory")), 503},
		{"other", errors.New("WRONGTYPE"), 500},
		// Unmarked, a network error is no longer the API's to recognise.
		{"unmarked", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, 500},
	} {
		h := newHarnessWith(t, func(cfg *Config) { cfg.Backend = &downBackend{newFake(), c.err} })
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

// deadlineBackend's FetchStatus answers nothing until its context's
// deadline, as a store on a hung server does, and then gives up as the
// Backend contract has it: with the context's error, bare or (as
// redisstore gives it) over a timed-out socket read.
type deadlineBackend struct {
	*fakeBackend
	panic     bool
	bare      bool // the context's error alone
	onHandler bool // FetchStatus ran on the handler's goroutine
}

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
	if d.bare {
		return nil, fmt.Errorf("store: fetching status: %w", ctx.Err())
	}
	return nil, fmt.Errorf("%w: redisstore: fetching status: %w", ctx.Err(), &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})
}

// TestHungStoreAnswers503: a store call is bounded by StoreTimeout, on the
// handler's goroutine, and past it answers 503 "timeout" (a timed-out read
// is a net.Error, but here it is the deadline, not an unreachable store).
func TestHungStoreAnswers503(t *testing.T) {
	for _, bare := range []bool{true, false} {
		db := &deadlineBackend{fakeBackend: newFake(), bare: bare}
		h := newHarnessWith(t, func(c *Config) { c.Backend = db; c.StoreTimeout = 20 * time.Millisecond })
		r := h.do("GET", df+"/instances/x", nil)
		if r.code != 503 || r.errBody(t).Error != "timeout" || r.header.Get("Retry-After") == "" {
			t.Fatalf("store at its deadline (bare %v): %d %s %v", bare, r.code, r.body, r.header)
		}
		if !db.onHandler {
			t.Error("the store was called in a goroutine of its own")
		}
	}
}

func TestDeadlineStorePanicIsJSON500(t *testing.T) {
	db := &deadlineBackend{fakeBackend: newFake(), panic: true}
	h := newHarnessWith(t, func(c *Config) { c.Backend = db })
	r := h.do("GET", df+"/instances/x", nil)
	if r.code != 500 || r.errBody(t).Error != "internal" {
		t.Fatalf("panic: %d %s", r.code, r.body)
	}
	if l := h.log.String(); !strings.Contains(l, "panic in a store call") || !strings.Contains(l, "boom in the store") || !strings.Contains(l, "op=status") {
		t.Errorf("the guard did not log the panic with its operation: %s", l)
	}
}
