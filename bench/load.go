package main

import (
	"context"
	"fmt"
	"math"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// target is the point of an instance's life a run waits for.
type target int

const (
	targetDone    target = iota // Completed (or Failed/Terminated: counted as errors)
	targetWaiting               // blocked in its wait for an event
)

// tracker follows the instances of one run: when each was started and
// when it reached the target. Instance ids are prefix + index.
type tracker struct {
	prefix  string
	n       int
	want    target
	starts  []atomic.Int64 // unix ns just before the start call
	reached []atomic.Int64 // unix ns when the target was seen
	count   atomic.Int64
	failed  atomic.Int64
	all     chan struct{}
	once    sync.Once
}

func newTracker(prefix string, n int, want target) *tracker {
	return &tracker{prefix: prefix, n: n, want: want,
		starts: make([]atomic.Int64, n), reached: make([]atomic.Int64, n), all: make(chan struct{})}
}

func (t *tracker) id(i int) string { return t.prefix + strconv.Itoa(i) }

// index returns the index of an id of this run, or -1.
func (t *tracker) index(id string) int {
	rest, ok := strings.CutPrefix(id, t.prefix)
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= t.n {
		return -1
	}
	return i
}

// observe records that instance i reached the target (first time only);
// failed marks an instance that ended without completing.
func (t *tracker) observe(i int, at time.Time, failed bool) {
	if !t.reached[i].CompareAndSwap(0, at.UnixNano()) {
		return
	}
	if failed {
		t.failed.Add(1)
	}
	if t.count.Add(1) == int64(t.n) {
		t.once.Do(func() { close(t.all) })
	}
}

// wait blocks until every instance reached the target or timeout.
func (t *tracker) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-t.all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("%d of %d instances reached the target within %s", t.count.Load(), t.n, timeout)
	}
}

// latencies returns start → target per instance, in ms, and the span from
// the first start to the last target.
func (t *tracker) latencies() ([]float64, time.Duration) {
	lat := make([]float64, 0, t.n)
	first, last := int64(math.MaxInt64), int64(0)
	for i := 0; i < t.n; i++ {
		s, r := t.starts[i].Load(), t.reached[i].Load()
		if s == 0 || r == 0 {
			continue
		}
		first, last = min(first, s), max(last, r)
		lat = append(lat, float64(r-s)/1e6)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return nil, 0
	}
	return lat, time.Duration(last - first)
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// starter starts instance i of a tracker (and raises its event when the
// shape wants it raised at once).
type starter func(ctx context.Context, i int, id string) error

// runLoad starts t.n instances: as fast as conc goroutines can (rate 0),
// or paced at rate starts per second, each start in its own goroutine so a
// slow one does not delay the next.
func runLoad(ctx context.Context, t *tracker, rate float64, conc int, start starter) (err error) {
	pprof.Do(ctx, pprof.Labels("role", "load"), func(ctx context.Context) { err = runLoadLabelled(ctx, t, rate, conc, start) })
	return err
}

func runLoadLabelled(ctx context.Context, t *tracker, rate float64, conc int, start starter) error {
	var firstErr atomic.Value
	do := func(i int) {
		id := t.id(i)
		t.starts[i].Store(time.Now().UnixNano())
		if err := start(ctx, i, id); err != nil {
			firstErr.CompareAndSwap(nil, fmt.Errorf("start %s: %w", id, err))
			t.observe(i, time.Now(), true)
		}
	}
	var wg sync.WaitGroup
	if rate <= 0 {
		var next atomic.Int64
		for g := 0; g < conc; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= t.n || ctx.Err() != nil {
						return
					}
					do(i)
				}
			}()
		}
	} else {
		t0 := time.Now()
		interval := time.Duration(float64(time.Second) / rate)
		for i := 0; i < t.n && ctx.Err() == nil; i++ {
			if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func() { defer wg.Done(); do(i) }()
		}
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}
