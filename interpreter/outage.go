package interpreter

import (
	"log/slog"
	"sync"
	"time"
)

// outageLog wraps an engine's Observer and writes one log line when the
// engine's store calls start failing and one when they succeed again, so an
// operator sees a Redis outage's start, end and length in the engine's own
// log without a line per failed call.
type outageLog struct {
	Observer
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	since  time.Time // when the current outage began; zero = none
	failed int       // calls failed since
}

func (o *outageLog) OnStoreCall(op string, err error) {
	o.Observer.OnStoreCall(op, err)
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err != nil && o.since.IsZero():
		o.since, o.failed = o.now(), 1
		o.log.Warn("store unreachable: engine calls failing", "op", op, "err", err)
	case err != nil:
		o.failed++
	case !o.since.IsZero():
		o.log.Info("store reachable again", "op", op, "outage", o.now().Sub(o.since).Round(time.Millisecond).String(), "failed_calls", o.failed)
		o.since, o.failed = time.Time{}, 0
	}
}
