package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestFetchStatusBatchedIsFetchStatus: from many goroutines at once (so
// reads share batches), FetchStatusBatched gives what FetchStatus gives.
func TestFetchStatusBatchedIsFetchStatus(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	ids := []string{"a", "b", "c", "w", "u"}
	for i, id := range ids {
		e.create(id, t0.Add(time.Duration(i)*time.Second))
	}
	e.finish("c", interpreter.StatusCompleted)
	// Waiting: their meta carries what they wait for, read by hand ("w")
	// or, with an accent in it, by encoding/json ("u").
	until := t0.Add(time.Hour)
	for id, event := range map[string]string{"w": "Open", "u": "Ouvert-é"} {
		tr := e.transition(id, "", func(s *interpreter.State) {
			s.Status = interpreter.StatusRunning
			s.Pending = &interpreter.Pending{Kind: interpreter.WaitEvent, StepID: "steps[1]", Event: event,
				Events: []string{event, "Close"}, TimerID: "t", Deadline: &until}
		})
		tr.StatusChanged = true
		if errs := e.commit(tr); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	want := map[string]*interpreter.InstanceStatus{}
	for _, id := range ids {
		st, err := e.s.FetchStatus(e.ctx, interpreter.InstanceID(id))
		if err != nil {
			t.Fatal(err)
		}
		want[id] = st
	}
	if p := want["w"].Pending; p == nil || p.Event != "Open" || p.Deadline == nil {
		t.Fatalf("the waiting instance's status: %+v", want["w"])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 20 {
				id := append(ids, "nope")[(g+k)%(len(ids)+1)]
				st, err := e.s.FetchStatusBatched(e.ctx, interpreter.InstanceID(id))
				switch {
				case id == "nope" && !errors.Is(err, interpreter.ErrNotFound):
					errs <- fmt.Errorf("unknown instance: %v, %v", st, err)
				case id != "nope" && err != nil:
					errs <- fmt.Errorf("%s: %w", id, err)
				case id != "nope" && !reflect.DeepEqual(st, want[id]):
					errs <- fmt.Errorf("%s: batched %+v, FetchStatus %+v", id, st, want[id])
				default:
					continue
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestFetchStatusHonoursDeadline: a Redis that answers nothing (CLIENT
// PAUSE) does not hold the caller past its deadline, whether the read goes
// alone (the client has ContextTimeoutEnabled) or batched (though the batch
// it rides waits for the client's ReadTimeout); the answer is the
// deadline's error, not ErrUnavailable, though a socket read timed out.
func TestFetchStatusHonoursDeadline(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.single("it pauses its one redis-server with CLIENT PAUSE")
	e.create("a", t0)
	c := redis.NewClient(&redis.Options{Addr: e.srv.Addr(), ContextTimeoutEnabled: true})
	defer c.Close()
	s := redisstore.New(c, redisstore.Options{})
	reads := []struct {
		name string
		read func(context.Context, interpreter.InstanceID) (*interpreter.InstanceStatus, error)
	}{{"alone", s.FetchStatus}, {"batched", e.s.FetchStatusBatched}}
	for _, r := range reads {
		if _, err := r.read(e.ctx, "a"); err != nil { // a pooled connection, the autopipeliner up
			t.Fatal(err)
		}
	}
	pauser := redis.NewClient(&redis.Options{Addr: e.srv.Addr()})
	defer pauser.Close()
	if err := pauser.Do(e.ctx, "CLIENT", "PAUSE", "1000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	defer pauser.Do(context.Background(), "CLIENT", "UNPAUSE")
	for _, r := range reads {
		ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
		start := time.Now()
		st, err := r.read(ctx, "a")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, interpreter.ErrUnavailable) {
			t.Errorf("%s, paused Redis: %v, %v; want the deadline's error, not ErrUnavailable", r.name, st, err)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("%s: returned %v after a 100 ms deadline", r.name, d)
		}
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := s.FetchStatus(ctx, "a"); !errors.Is(err, context.Canceled) || errors.Is(err, interpreter.ErrUnavailable) {
		t.Errorf("canceled: %v; want context.Canceled, not ErrUnavailable", err)
	}
}

// statusReadHook counts HMGETs sent by FetchStatus on the caller's
// goroutine (plain) and the others (batched: the autopipeliner sends them
// from its own). Once hold is set, the next plain read signals entered and
// waits for release.
type statusReadHook struct {
	hold             atomic.Bool
	entered, release chan struct{}
	plain, batched   atomic.Int64
}

func (h *statusReadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *statusReadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hmget" {
			h.count(1)
		}
		return next(ctx, cmd)
	}
}

func (h *statusReadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "hmget" {
				h.count(1)
			}
		}
		return next(ctx, cmds)
	}
}

func (h *statusReadHook) count(n int64) {
	stack := string(debug.Stack())
	if !strings.Contains(stack, "redisstore.(*Store).FetchStatus(") || strings.Contains(stack, "fetchBatched(") {
		h.batched.Add(n)
		return
	}
	h.plain.Add(n)
	if h.hold.CompareAndSwap(true, false) {
		h.entered <- struct{}{}
		<-h.release
	}
}

// TestStatusReadsBatchedInCompany: a status read alone makes its own round
// trip; one that finds another in flight is batched.
func TestStatusReadsBatchedInCompany(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("x", t0)
	h := &statusReadHook{entered: make(chan struct{}), release: make(chan struct{})}
	e.client.AddHook(h)
	if st, err := e.s.FetchStatus(e.ctx, "x"); err != nil || st.ID != "x" || h.plain.Load() != 1 || h.batched.Load() != 0 {
		t.Fatalf("a lone read: %+v, %v; %d plain, %d batched", st, err, h.plain.Load(), h.batched.Load())
	}
	h.hold.Store(true)
	first := make(chan error)
	go func() {
		_, err := e.s.FetchStatus(e.ctx, "x")
		first <- err
	}()
	<-h.entered // the first read is in flight
	st, err := e.s.FetchStatus(e.ctx, "x")
	close(h.release)
	if err1 := <-first; err != nil || err1 != nil || st.ID != "x" {
		t.Fatalf("two reads at once: %+v, %v; %v", st, err, err1)
	}
	if h.plain.Load() != 2 || h.batched.Load() != 1 {
		t.Fatalf("two reads at once: %d plain, %d batched; want 2 and 1", h.plain.Load(), h.batched.Load())
	}
	if _, err := e.s.FetchStatus(e.ctx, "x"); err != nil || h.plain.Load() != 3 {
		t.Fatalf("alone again: %v; %d plain, %d batched", err, h.plain.Load(), h.batched.Load())
	}
}
