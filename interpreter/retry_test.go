package interpreter

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRetryAppliesWhatTheStoreFailed: items whose commit failed (the
// store away) are applied again once it answers, by the engine that read
// them, without waiting for their lease.
func TestRetryAppliesWhatTheStoreFailed(t *testing.T) {
	m, def := newMemStore(t, pairFlow)
	e := quietEngine(m, EngineOptions{})
	e.Process(context.Background(), []WorkItem{m.create(def, "i")})
	m.mu.Lock()
	m.commitErr = errors.New("connection refused")
	m.mu.Unlock()
	a, b := m.raise("i", "a", "1"), m.raise("i", "b", "2")
	e.Process(context.Background(), []WorkItem{a, b})
	m.mu.Lock()
	acked := m.isAcked(a) || m.isAcked(b)
	m.mu.Unlock()
	if acked {
		t.Fatal("an item was acknowledged without its transition")
	}
	e.retry.mu.Lock()
	queued := len(e.retry.items)
	e.retry.mu.Unlock()
	if queued != 2 {
		t.Fatalf("%d items queued to retry, want 2", queued)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.retryLoop(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(3 * retryFirst) // a few failing retries, whatever their number
	m.mu.Lock()
	m.commitErr = nil
	m.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m.mu.Lock()
		ok := m.isAcked(a, b) && m.states["i"].Status == StatusCompleted
		m.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed items were not applied once the store answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
