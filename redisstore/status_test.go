package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
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

// TestFetchStatusBatchedHonoursDeadline: a Redis that answers nothing
// (CLIENT PAUSE) does not hold the caller past its deadline, though the
// batch it rides waits for the client's ReadTimeout.
func TestFetchStatusBatchedHonoursDeadline(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	if _, err := e.s.FetchStatusBatched(e.ctx, "a"); err != nil { // the autopipeliner is up
		t.Fatal(err)
	}
	pauser := redis.NewClient(&redis.Options{Addr: e.srv.Addr()})
	defer pauser.Close()
	if err := pauser.Do(e.ctx, "CLIENT", "PAUSE", "1000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	defer pauser.Do(context.Background(), "CLIENT", "UNPAUSE")
	ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
	defer cancel()
	if st, err := e.s.FetchStatusBatched(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("paused Redis: %v, %v; want the deadline's error", st, err)
	}
}

func TestHonoursDeadlines(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	if e.s.HonoursDeadlines() {
		t.Error("a client without ContextTimeoutEnabled honours deadlines")
	}
	c := redis.NewClient(&redis.Options{Addr: e.srv.Addr(), ContextTimeoutEnabled: true})
	defer c.Close()
	if !redisstore.New(c, redisstore.Options{}).HonoursDeadlines() {
		t.Error("a client with ContextTimeoutEnabled does not honour deadlines")
	}
}
