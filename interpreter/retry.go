package interpreter

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// A round that fails because the store did not answer (a load or a commit
// cut by a failover, say) leaves its work items pending for this engine.
// No other engine takes them over while this one heartbeats, and its
// reads never return them again, so they used to wait for the lease
// (ReclaimAfter, 30 s). Instead the engine keeps them and applies them
// again, backing off from retryFirst to retryMax, until the store answers:
// a failover costs them seconds, not the lease. Applying an item twice is
// safe (a commit that did land before its reply was lost makes the retry
// a revision conflict, then a duplicate). The queue is bounded: what does
// not fit waits for the lease as before.

const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 2 * time.Second
	// retryLimit bounds the items kept: an engine's reads deliver at most
	// a few batches while the store fails.
	retryLimit = 16384
)

// retryQueue holds the items to apply again.
type retryQueue struct {
	mu    sync.Mutex
	items []WorkItem
	kick  chan struct{} // made on first use; signalled by add
}

func (q *retryQueue) signal() chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.kick == nil {
		q.kick = make(chan struct{}, 1)
	}
	return q.kick
}

// add queues items to apply again.
func (q *retryQueue) add(items []WorkItem, log *slog.Logger) {
	kick := q.signal()
	q.mu.Lock()
	room := retryLimit - len(q.items)
	if room < len(items) {
		log.Warn("too much work waiting for the store; the rest is reclaimed after the lease", "items", len(items)-max(room, 0))
		items = items[:max(room, 0)]
	}
	q.items = append(q.items, items...)
	q.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (q *retryQueue) take() []WorkItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// retryLoop applies the queued items again, backing off while the store
// keeps failing them.
func (e *Engine) retryLoop(ctx context.Context) {
	kick := e.retry.signal()
	wait := retryFirst
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		for {
			Sleep(ctx, wait)
			if ctx.Err() != nil {
				return
			}
			items := e.retry.take()
			if len(items) == 0 {
				break
			}
			// Ours now, whatever ctx does (as the read loops'); Process
			// queues what fails again.
			e.Process(context.WithoutCancel(ctx), items)
			e.retry.mu.Lock()
			failed := len(e.retry.items) > 0
			e.retry.mu.Unlock()
			if !failed {
				e.log.Info("applied work items the store had failed", "items", len(items))
				wait = retryFirst
				break
			}
			wait = min(2*wait, retryMax)
		}
	}
}
