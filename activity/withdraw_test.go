package activity_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// cancelBound is how long a handler may take to hear that its instance
// was terminated: generous, so the test never races the machine; the
// runtime's lease renewals are an hour apart, so only the withdrawal
// notice can meet it.
const cancelBound = 10 * time.Second

// terminate sends a terminate to the instance.
func (e *env) terminate(id string) {
	e.t.Helper()
	if err := e.store.SendControl(e.ctx, interpreter.InstanceID(id), interpreter.Event{Kind: interpreter.EvTerminate, Time: time.Now(), Reason: "test"}); err != nil {
		e.t.Fatal(err)
	}
}

// TestTerminateCancelsGoHandler: a Go handler running when its instance is
// terminated has its context cancelled (the commit's withdrawal notice),
// and its outcome is not reported.
func TestTerminateCancelsGoHandler(t *testing.T) {
	e := newEnv(t)
	started, cancelled := make(chan struct{}), make(chan error, 1)
	e.reg.Register("Charge", func(ctx context.Context, task activity.Task) (any, error) {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
		return "charged anyway", nil
	})
	e.deploy(catchWorkflow("Pay", "Charge", ""))
	e.start("Pay", "p1", 1)
	rt := e.runtime(activity.Options{Lease: time.Hour})
	<-started
	e.terminate("p1")
	if st := e.wait("p1"); st.Status != interpreter.StatusTerminated {
		t.Fatalf("p1 is %s", st.Status)
	}
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler context ended with %v", err)
		}
	case <-time.After(cancelBound):
		t.Fatalf("the handler's context was not cancelled within %s of the terminate", cancelBound)
	}
	waitHeld(t, rt, 0)
	if n := len(e.history("p1", "TaskCompleted")); n != 0 {
		t.Fatalf("%d TaskCompleted lines after the terminate", n)
	}
}

// TestTerminateAbortsHTTPCall: an http binding's request in flight when its
// instance is terminated is aborted.
func TestTerminateAbortsHTTPCall(t *testing.T) {
	e := newEnv(t)
	arrived, aborted := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client gone only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		close(arrived)
		select {
		case <-r.Context().Done():
			close(aborted)
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(srv.Close)
	e.deploy(catchWorkflow("Ship", "Book", "    http:\n      url: "+srv.URL+"/book\n"))
	e.start("Ship", "s1", 1)
	e.runtime(activity.Options{Lease: time.Hour})
	<-arrived
	e.terminate("s1")
	select {
	case <-aborted:
	case <-time.After(cancelBound):
		t.Fatalf("the http call was not aborted within %s of the terminate", cancelBound)
	}
}

// noNotices hides the store's withdrawal notices from a runtime.
type noNotices struct{ activity.TaskStore }

// TestWithdrawalFoundByRenewal: a runtime that misses the notice (its store
// gives none) stops the handler at its next lease renewal.
func TestWithdrawalFoundByRenewal(t *testing.T) {
	e := newEnv(t)
	started, cancelled := make(chan struct{}), make(chan struct{})
	e.reg.Register("Charge", func(ctx context.Context, task activity.Task) (any, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	e.deploy(catchWorkflow("Pay", "Charge", ""))
	e.start("Pay", "p1", 1)
	e.ts = noNotices{e.store}
	e.runtime(activity.Options{Lease: 400 * time.Millisecond})
	<-started
	e.terminate("p1")
	select {
	case <-cancelled:
	case <-time.After(cancelBound):
		t.Fatalf("the handler's context was not cancelled within %s of the terminate", cancelBound)
	}
}

// waitHeld waits until the runtime holds n tasks.
func waitHeld(t *testing.T, rt *activity.Runtime, n int) {
	t.Helper()
	deadline := time.Now().Add(cancelBound)
	for {
		q, r := rt.Held()
		if q+r == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runtime holds %d queued and %d running tasks, want %d in all", q, r, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lateWatch is the store with a withdrawal watch that takes hold seconds
// to subscribe; it notes a task read made before the watch was in place.
type lateWatch struct {
	*redisstore.Store
	hold       time.Duration
	subscribed atomic.Bool
	early      atomic.Int32
}

func (l *lateWatch) WatchWithdrawn(ctx context.Context, subscribed func(), fn func(interpreter.InstanceID, []string)) error {
	interpreter.Sleep(ctx, l.hold)
	return l.Store.WatchWithdrawn(ctx, func() {
		l.subscribed.Store(true)
		subscribed()
	}, fn)
}

func (l *lateWatch) ReadTaskBatch(ctx context.Context, consumer, queue string, want int, block time.Duration) ([]interpreter.Task, error) {
	if !l.subscribed.Load() {
		l.early.Add(1)
	}
	return l.Store.ReadTaskBatch(ctx, consumer, queue, want, block)
}

// TestNoTaskReadBeforeTheWatch: the runtime reads no task until its
// withdrawal watch is subscribed, so a task terminated right after it is
// read is always cancelled (Redis pub/sub keeps nothing for a subscriber
// that comes later; before this, a terminate in that window ran on until
// the next lease renewal).
func TestNoTaskReadBeforeTheWatch(t *testing.T) {
	e := newEnv(t)
	lw := &lateWatch{Store: e.store, hold: 300 * time.Millisecond}
	e.ts = lw
	started := make(chan struct{})
	e.reg.Register("Charge", func(ctx context.Context, task activity.Task) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	e.deploy(catchWorkflow("Pay", "Charge", ""))
	e.start("Pay", "p1", 1)
	e.runtime(activity.Options{Lease: time.Hour})
	<-started
	if n := lw.early.Load(); n != 0 {
		t.Fatalf("%d task reads before the withdrawal watch was subscribed", n)
	}
	e.terminate("p1")
	if st := e.wait("p1"); st.Status != interpreter.StatusTerminated {
		t.Fatalf("p1 is %s", st.Status)
	}
}
