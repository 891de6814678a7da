package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

var _ activity.SlotStore = (*redisstore.Store)(nil)

// TestConcurrencySlots: a semaphore of two slots gives out two, again to
// a holder that has one, and a third once one is released or its holder's
// lease ends unrenewed (it crashed); a renewed lease keeps its slot, an
// ended one is reported lost.
func TestConcurrencySlots(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	const lease = 10 * time.Second
	acquire := func(holder string, at time.Time) bool {
		t.Helper()
		ok, err := e.s.AcquireSlot(e.ctx, "Wf/Charge", holder, 2, lease, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !acquire("a", t0) || !acquire("b", t0) {
		t.Fatal("two free slots not given")
	}
	if acquire("c", t0.Add(time.Second)) {
		t.Fatal("a third slot given")
	}
	if !acquire("a", t0.Add(time.Second)) {
		t.Fatal("a holder's own slot refused")
	}
	if err := e.s.ReleaseSlot(e.ctx, "Wf/Charge", "b"); err != nil {
		t.Fatal(err)
	}
	if !acquire("c", t0.Add(2*time.Second)) {
		t.Fatal("a released slot not given again")
	}
	// a renews until t0+8s; c does not (it crashed): at t0+13s c's lease
	// (from t0+2s) has ended and d gets its slot, a keeps its.
	if errs := e.s.RenewSlots(e.ctx, []string{"Wf/Charge"}, []string{"a"}, lease, t0.Add(8*time.Second)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if !acquire("d", t0.Add(13*time.Second)) {
		t.Fatal("a dead holder's slot did not come back after its lease")
	}
	if acquire("e", t0.Add(13*time.Second)) {
		t.Fatal("a renewed slot was given away")
	}
	errs := e.s.RenewSlots(e.ctx, []string{"Wf/Charge", "Wf/Charge"}, []string{"c", "d"}, lease, t0.Add(14*time.Second))
	if !errors.Is(errs[0], interpreter.ErrNotFound) || errs[1] != nil {
		t.Fatalf("renewing a lost slot and a live one: %v", errs)
	}
}
