package activity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
)

// flaky is a TaskStore whose first `away` outcome calls answer that the
// store is unavailable, as during a Redis outage or a failover, before it
// passes them on.
type flaky struct {
	activity.TaskStore
	away  int32
	tries atomic.Int32
}

func (f *flaky) outage() error {
	if n := f.tries.Add(1); n <= f.away {
		return fmt.Errorf("flaky: try %d: %w", n, interpreter.ErrUnavailable)
	}
	return nil
}

func (f *flaky) CompleteTask(ctx context.Context, ref interpreter.TaskRef, result json.RawMessage, now time.Time) error {
	if err := f.outage(); err != nil {
		return err
	}
	return f.TaskStore.CompleteTask(ctx, ref, result, now)
}

func (f *flaky) FailTask(ctx context.Context, ref interpreter.TaskRef, info interpreter.ErrorInfo, now time.Time) error {
	if err := f.outage(); err != nil {
		return err
	}
	return f.TaskStore.FailTask(ctx, ref, info, now)
}

// TestOutcomeHeldThroughAnOutage: an activity finishes while the store is
// away for more tries than other errors get; the runtime holds its outcome
// and records it once the store is back. The lease is an hour, so an
// outcome dropped (as before: after five tries) would never complete the
// instance, and the activity runs once.
func TestOutcomeHeldThroughAnOutage(t *testing.T) {
	for _, failing := range []bool{false, true} {
		t.Run(fmt.Sprintf("failing=%v", failing), func(t *testing.T) {
			e := newEnv(t)
			var calls atomic.Int32
			e.reg.Register("Book", func(ctx context.Context, task activity.Task) (any, error) {
				calls.Add(1)
				if failing {
					return nil, activity.NonRetryable(errors.New("sold out"))
				}
				return "booked", nil
			})
			e.deploy(catchWorkflow("Booking", "Book", ""))
			e.start("Booking", "b1", nil)
			fs := &flaky{TaskStore: e.ts, away: 8}
			e.background(activity.NewRuntime(fs, e.cat, e.reg, activity.Options{Consumer: "a", Lease: time.Hour,
				Block: 100 * time.Millisecond, Logger: logger()}).Run)
			o := e.outcome("b1")
			if failing {
				if o.Failed == nil || o.Failed.Message != "sold out" {
					t.Fatalf("outcome %+v, want the activity's failure", o)
				}
			} else if string(o.Result) != `"booked"` {
				t.Fatalf("outcome %+v", o)
			}
			if n := fs.tries.Load(); n != 9 {
				t.Fatalf("%d outcome calls, want 8 refused and 1 through", n)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("the activity ran %d times", n)
			}
		})
	}
}

// away is a TaskStore whose outcome calls answer that the store is
// unavailable until the channel open is closed.
type away struct {
	activity.TaskStore
	open  chan struct{}
	tries atomic.Int32
}

func (a *away) outage() error {
	a.tries.Add(1)
	select {
	case <-a.open:
		return nil
	default:
		return fmt.Errorf("away: %w", interpreter.ErrUnavailable)
	}
}

func (a *away) CompleteTask(ctx context.Context, ref interpreter.TaskRef, result json.RawMessage, now time.Time) error {
	if err := a.outage(); err != nil {
		return err
	}
	return a.TaskStore.CompleteTask(ctx, ref, result, now)
}

// TestOutageAcrossTheTimeout: the activity finishes at once, but its
// outcome cannot be recorded until after the attempt's timeout (1s) has
// fired. The engine finds the task held when the timeout fires, waits its
// grace, and takes the outcome, which says it finished in time: the
// instance completes, no ActivityTimeout, one execution.
func TestOutageAcrossTheTimeout(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	finished := make(chan struct{}, 1)
	e.reg.Register("Book", func(ctx context.Context, task activity.Task) (any, error) {
		calls.Add(1)
		finished <- struct{}{}
		return "booked", nil
	})
	e.deploy(catchWorkflow("Booking", "Book", "    timeout: 1s"))
	e.start("Booking", "b1", nil)
	as := &away{TaskStore: e.ts, open: make(chan struct{})}
	e.background(activity.NewRuntime(as, e.cat, e.reg, activity.Options{Consumer: "a", Lease: time.Hour,
		Block: 100 * time.Millisecond, Logger: logger()}).Run)
	<-finished
	// Hold the outcome until the timeout's timer has fired: the engine
	// writes its TimerFired line then (outcome-independent, so the test
	// does not depend on how long the timer loop takes).
	deadline := time.Now().Add(30 * time.Second)
	for len(e.history("b1", "TimerFired")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the attempt's timeout never fired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(as.open)
	o := e.outcome("b1")
	if string(o.Result) != `"booked"` {
		t.Fatalf("outcome %+v, want the activity's result (it finished within its timeout)", o)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the activity ran %d times", n)
	}
	if n := as.tries.Load(); n < 2 {
		t.Fatalf("%d outcome calls, want some refused during the outage", n)
	}
	if f := e.history("b1", "TaskFailed"); len(f) != 0 {
		t.Fatalf("the attempt failed: %+v", f)
	}
}
