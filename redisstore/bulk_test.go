package redisstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestBulkCalls: SendControlMany and PurgeInstances act on every id in one
// round trip, answering per id as the single-instance calls do, and the
// counts follow the purges.
func TestBulkCalls(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	e.single("it counts the round trips of one redis-server; on a cluster a call spans up to 3 masters (internal/e2e cost_cluster_test.go measures those)")
	var ids []interpreter.InstanceID
	for i := range 6 {
		id := fmt.Sprintf("b%d", i)
		e.create(id, t0)
		ids = append(ids, interpreter.InstanceID(id))
	}
	e.finish("b0", completed)
	e.finish("b1", failed)
	all := append(ids, "missing")

	var errs []error
	trips, _ := e.trips.measure(func() {
		var err error
		if errs, err = e.s.PurgeInstances(e.ctx, all); err != nil {
			t.Fatal(err)
		}
	})
	if trips != 1 {
		t.Errorf("PurgeInstances of %d took %d round trips, want 1", len(all), trips)
	}
	for i, err := range errs {
		var want error
		switch {
		case i < 2:
		case all[i] == "missing":
			want = interpreter.ErrNotFound
		default:
			want = interpreter.ErrAlreadyRunning
		}
		if (want == nil) != (err == nil) || want != nil && !errors.Is(err, want) {
			t.Errorf("purge %s: %v, want %v", all[i], err, want)
		}
	}
	if got := countsOf(t, e.s); !sameCounts(got, counts{"Wf": {pending: 4}}) {
		t.Errorf("counts after the purge: %v", got)
	}

	trips, _ = e.trips.measure(func() {
		var err error
		if errs, err = e.s.SendControlMany(e.ctx, all, interpreter.Event{Kind: interpreter.EvTerminate, Time: t0}); err != nil {
			t.Fatal(err)
		}
	})
	if trips != 1 {
		t.Errorf("SendControlMany of %d took %d round trips, want 1", len(all), trips)
	}
	for i, err := range errs {
		want := interpreter.ErrNotFound // purged, or never there
		if i >= 2 && all[i] != "missing" {
			want = nil
		}
		if (want == nil) != (err == nil) || want != nil && !errors.Is(err, want) {
			t.Errorf("terminate %s: %v, want %v", all[i], err, want)
		}
	}
	if got := len(e.readAll("c")); got != 6+4 { // the six start items and four terminates
		t.Errorf("%d work items queued, want 10", got)
	}
	if _, err := e.s.SendControlMany(e.ctx, ids, interpreter.Event{Kind: interpreter.EvRaised}); err == nil {
		t.Error("SendControlMany took a raised event")
	}
}
