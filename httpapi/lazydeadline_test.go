package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// hungLatest's LatestDefinition waits for its context as a store on a hung
// server does; cached answers at once without looking at it.
type hungLatest struct {
	*fakeBackend
	cached bool
	saw    context.Context
}

func (h *hungLatest) LatestDefinition(ctx context.Context, name string) (string, error) {
	h.saw = ctx
	if h.cached {
		return "h1", nil
	}
	if _, ok := ctx.Deadline(); !ok {
		return "", errors.New("the store call has no deadline")
	}
	<-ctx.Done()
	return "", ctx.Err()
}

func TestLatestDefinitionBounded(t *testing.T) {
	hb := &hungLatest{fakeBackend: newFake()}
	h := newHarnessWith(t, func(c *Config) { c.Backend = hb; c.StoreTimeout = 20 * time.Millisecond })
	r := h.do("POST", df+"/orchestrators/Hello", nil)
	if r.code != 503 || r.errBody(t).Error != "timeout" {
		t.Fatalf("hung latest: %d %s", r.code, r.body)
	}
	hb.cached = true
	if r := h.do("POST", df+"/orchestrators/Hello", nil); r.code != 202 {
		t.Fatalf("cached latest: %d %s", r.code, r.body)
	}
	lc := hb.saw.(*lazyDeadline)
	if lc.cancel != nil {
		t.Error("a call that never looked at its context armed it")
	}
	// A look after the call ended finds it done, as WithDeadline's is.
	select {
	case <-lc.Done():
	default:
		t.Error("ended context not done")
	}
	if !errors.Is(lc.Err(), context.Canceled) {
		t.Errorf("ended: %v", lc.Err())
	}
}

// TestLazyDeadlineIsWithDeadline: armed, it answers as the context it
// stands for: its deadline, the parent's values and cancellation, its
// cause, and contexts made from it.
func TestLazyDeadlineIsWithDeadline(t *testing.T) {
	type key struct{}
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer cancelParent()
	lc := &lazyDeadline{parent: parent, deadline: time.Now().Add(30 * time.Millisecond)}
	defer lc.end()
	if d, ok := lc.Deadline(); !ok || !d.Equal(lc.deadline) {
		t.Errorf("deadline %v %v", d, ok)
	}
	if lc.Value(key{}) != "v" {
		t.Error("parent's value lost")
	}
	child, cancelChild := context.WithCancel(lc)
	defer cancelChild()
	if lc.Err() != nil || context.Cause(lc) != nil {
		t.Fatalf("done early: %v %v", lc.Err(), context.Cause(lc))
	}
	<-child.Done()
	if !errors.Is(lc.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(lc), context.DeadlineExceeded) {
		t.Errorf("at the deadline: %v %v %v", lc.Err(), child.Err(), context.Cause(lc))
	}

	// The parent's end ends it, armed late.
	early, cancelEarly := context.WithCancel(context.Background())
	lc2 := &lazyDeadline{parent: early, deadline: time.Now().Add(time.Hour)}
	defer lc2.end()
	cancelEarly()
	<-lc2.Done()
	if !errors.Is(lc2.Err(), context.Canceled) {
		t.Errorf("parent canceled: %v", lc2.Err())
	}
	// A nearer parent deadline is the one it reports.
	near, cancelNear := context.WithTimeout(context.Background(), time.Minute)
	defer cancelNear()
	lc3 := &lazyDeadline{parent: near, deadline: time.Now().Add(time.Hour)}
	defer lc3.end()
	if d, _ := lc3.Deadline(); d.After(time.Now().Add(2 * time.Minute)) {
		t.Errorf("deadline %v past the parent's", d)
	}
}
