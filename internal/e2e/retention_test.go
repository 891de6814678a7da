package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestRetentionThroughTheEngine: with retention "none", the engine's
// maintenance deletes instances soon after they finish, never one that
// still waits, and leaves no key of a deleted instance behind.
func TestRetentionThroughTheEngine(t *testing.T) {
	e := newEnvWith(t, redisstore.Options{Retention: redisstore.KeepNone})
	e.deployFile("../../workflows/reserve-ticket.yaml")
	e.run(interpreter.EngineOptions{Consumer: "r", TrimEvery: 50 * time.Millisecond})

	const n = 20
	for i := range n {
		e.start("ReserveTicket", retID("done", i), "user-1")
		if err := e.raise(retID("done", i), "BookingConfirmed", true); err != nil {
			t.Fatal(err)
		}
		e.start("ReserveTicket", retID("waits", i), "user-1")
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < n; i++ {
		for {
			_, err := e.store.FetchStatus(ctx, interpreter.InstanceID(retID("done", i)))
			if errors.Is(err, interpreter.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still there: %v", retID("done", i), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := 0; i < n; i++ {
		e.waitFor(retID("waits", i), "BookingConfirmed")
	}
	for _, key := range e.keys("*done-*") {
		t.Errorf("key %s of a deleted instance is left", key)
	}
	if st, err := e.store.FetchStatus(ctx, interpreter.InstanceID(retID("waits", 0))); err != nil || st.Status != interpreter.StatusRunning {
		t.Fatalf("a waiting instance: %+v %v", st, err)
	}
}

func retID(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }
