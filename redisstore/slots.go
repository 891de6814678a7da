package redisstore

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// This file keeps the semaphores of activities whose `concurrency:` has
// scope global: one zset per semaphore, holder → the unix ms its lease
// ends. A holder renews its lease while its attempt runs; the slots of a
// process that died come back once their leases pass, dropped by the next
// acquire. Times come from the callers' clocks, so the processes' clocks
// must agree to well within a lease.

var (
	//go:embed scripts/acquire_slot.lua
	acquireSlotSrc string
	//go:embed scripts/renew_slot.lua
	renewSlotSrc string
	// Not in allScripts: only activities with a global limit use them,
	// and runScripts loads a script the server lacks.
	acquireSlotCmd = redis.NewScript(acquireSlotSrc)
	renewSlotCmd   = redis.NewScript(renewSlotSrc)
)

// AcquireSlot takes one of limit slots of the semaphore name for holder,
// under a lease of the given length from now, unless all are held; true,
// too, when holder holds one already (its lease restarts). One round trip.
func (s *Store) AcquireSlot(ctx context.Context, name, holder string, limit int, lease time.Duration, now time.Time) (_ bool, err error) {
	defer classify(ctx, &err)
	res, err := s.runScripts(ctx, []scriptCall{{script: acquireSlotCmd, keys: []string{s.k.slots(name)},
		args: []any{holder, limit, now.UnixMilli(), now.Add(lease).UnixMilli()}}})
	if err != nil {
		return false, fmt.Errorf("redisstore: acquiring a slot of %s: %w", name, err)
	}
	n, err := res[0].Int64()
	if err != nil {
		return false, fmt.Errorf("redisstore: acquiring a slot of %s: %w", name, err)
	}
	return n == 1, nil
}

// RenewSlots restarts the leases of the slots holders[i] holds of
// names[i], one script call each in one pipeline; errs[i] is
// interpreter.ErrNotFound when that lease had ended (the slot may be
// another holder's now).
func (s *Store) RenewSlots(ctx context.Context, names, holders []string, lease time.Duration, now time.Time) (errs []error) {
	defer classifyEach(ctx, &errs)
	errs = make([]error, len(names))
	calls := make([]scriptCall, len(names))
	for i, name := range names {
		calls[i] = scriptCall{script: renewSlotCmd, keys: []string{s.k.slots(name)},
			args: []any{holders[i], now.UnixMilli(), now.Add(lease).UnixMilli()}}
	}
	res, perr := s.runScripts(ctx, calls)
	for i, name := range names {
		err := perr
		var n int64
		if err == nil {
			n, err = res[i].Int64()
		}
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("redisstore: renewing a slot of %s: %w", name, err)
		case n == 0:
			errs[i] = fmt.Errorf("redisstore: slot of %s held by %s: lease ended: %w", name, holders[i], interpreter.ErrNotFound)
		}
	}
	return errs
}

// ReleaseSlot frees holder's slot of name; no error when it holds none.
// One round trip.
func (s *Store) ReleaseSlot(ctx context.Context, name, holder string) (err error) {
	defer classify(ctx, &err)
	if err := s.client.ZRem(ctx, s.k.slots(name), holder).Err(); err != nil {
		return fmt.Errorf("redisstore: releasing a slot of %s: %w", name, err)
	}
	return nil
}
