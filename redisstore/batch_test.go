package redisstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// Concurrent script calls go out batched (runScript): each still gets its
// own answer, also after the server's script cache was flushed, and a
// duplicate start among them is refused, not lost.
func TestConcurrentScriptCallsAreBatched(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	for round := range 2 {
		if round == 1 {
			if err := e.client.ScriptFlush(e.ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		trips, _ := e.trips.measure(func() {
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Every tenth id is started twice.
					id := fmt.Sprintf("r%d-%d", round, i)
					if i%10 == 9 {
						id = fmt.Sprintf("r%d-%d", round, i-1)
					}
					errs[i] = e.s.CreateInstance(e.ctx, newInstance(id, t0, `{"x":1}`))
				}()
			}
			wg.Wait()
		})
		dups := 0
		for i, err := range errs {
			switch {
			case errors.Is(err, interpreter.ErrAlreadyRunning):
				dups++
			case err != nil:
				t.Fatalf("round %d, start %d: %v", round, i, err)
			}
		}
		if dups != n/10 {
			t.Errorf("round %d: %d starts refused as duplicates, want %d", round, dups, n/10)
		}
		for i := range n {
			if i%10 == 9 {
				continue
			}
			if st := e.load(fmt.Sprintf("r%d-%d", round, i)); st == nil {
				t.Fatalf("round %d: instance %d was not created", round, i)
			}
		}
		t.Logf("round %d: %d starts in %d round trips (batches)", round, n, trips)
	}
}
