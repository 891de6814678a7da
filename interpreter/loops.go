package interpreter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

// DefaultConsumer returns a consumer name for a process that was given
// none: host-pid-random, so that engines and activity runtimes sharing a
// store never share a name.
func DefaultConsumer() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%06x", host, os.Getpid(), rand.Uint32()&0xffffff)
}

// Sleep waits for d or until ctx is done, whichever comes first, and
// reports whether the whole d passed. The background loops of engines and
// activity runtimes back off with it.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// beatLoop announces the engine every Heartbeat until ctx ends, then
// removes it from the members: an engine that stops on purpose finishes
// what it holds itself, and anything left waits out the lease rather than
// be taken from it while it finishes. It runs on a goroutine of its own,
// so no transition, however long, delays a beat.
func (e *Engine) beatLoop(ctx context.Context, m Membership) {
	tick := time.NewTicker(e.opts.Heartbeat)
	defer tick.Stop()
	var last int64 // the last beat written; each one is greater
	beaten, failing := false, false
	for {
		beat := max(e.opts.Clock().UnixMilli(), last+1)
		cctx, cancel := context.WithTimeout(ctx, e.opts.Heartbeat)
		added, err := m.Heartbeat(cctx, e.opts.Consumer, beat)
		cancel()
		if ctx.Err() != nil {
			break
		}
		e.obs.OnStoreCall("heartbeat", err)
		switch {
		case err != nil && !failing:
			failing = true
			e.log.Warn("heartbeat failed; other engines take this one's work over if it stays silent", "err", err, "after", e.opts.DeadAfter)
		case err == nil:
			if added && beaten {
				e.log.Warn("this engine had been taken for dead (no heartbeat reached the store for a while): the work it held was taken over; it carries on, and its commits of that work are refused by revision")
			}
			last, beaten, failing = beat, true, false
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := m.Forget(lctx, e.opts.Consumer); err != nil {
		e.log.Warn("leaving the engines failed; the others take this one for dead and take over what it left", "err", err)
	}
}

// beatSeen is what watchLoop knows of another engine: its last beat, and
// when (this process's monotonic clock) it first saw that beat.
type beatSeen struct {
	beat int64
	at   time.Time
}

// watchLoop looks at the members twice a Heartbeat and takes over from
// every engine whose beat has not changed for DeadAfter. Only this
// process's monotonic clock measures that, never the beats' values, so
// clocks that differ between hosts do not matter, and a pause of this
// process (which sees no change while paused) cannot make an engine look
// dead: a beat counts as unchanged only from the reply that first showed
// it to a read sent DeadAfter later. A new engine thus waits DeadAfter
// before it takes over from anyone, whatever it finds.
//
// When its own reads failed, or none succeeded for two heartbeats (the
// store was away, or this engine stalled), the others' beats may have
// failed just as well: it starts watching afresh, so that an outage of
// the store longer than DeadAfter does not make every engine look dead
// once it is over.
func (e *Engine) watchLoop(ctx context.Context, m Membership) {
	every := max(e.opts.Heartbeat/2, time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	seen := map[string]beatSeen{}
	var lastOK time.Time // reply time of the last successful read
	broken := true       // no read yet, or one failed since the last success
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sent := time.Now()
		members, err := m.Members(ctx)
		got := time.Now()
		if ctx.Err() != nil {
			return
		}
		e.obs.OnStoreCall("members", err)
		if err != nil {
			broken = true
			continue
		}
		if broken || sent.Sub(lastOK) > 2*e.opts.Heartbeat {
			clear(seen)
		}
		broken, lastOK = false, got
		var dead []string
		for name, beat := range members {
			if name == e.opts.Consumer {
				continue
			}
			s, ok := seen[name]
			if !ok || s.beat != beat {
				seen[name] = beatSeen{beat: beat, at: got}
				continue
			}
			if sent.Sub(s.at) >= e.opts.DeadAfter {
				dead = append(dead, name)
			}
		}
		for name := range seen {
			if _, ok := members[name]; !ok {
				delete(seen, name)
			}
		}
		for _, name := range dead {
			if e.takeOver(ctx, m, name, sent.Sub(seen[name].at)) {
				delete(seen, name)
			}
		}
	}
}

// takeOver moves what the silent engine dead held to this one: its work
// items, applied here at once, and its activity tasks, handed to the
// runtimes' next reclaim (OnTakeover). Once dead holds nothing it is
// removed from the members, and the takeover is logged. It reports
// whether that is done; if not, the next look tries again. Another engine
// may take over from dead at the same moment: each item goes to one of
// them.
func (e *Engine) takeOver(ctx context.Context, m Membership, dead string, silent time.Duration) bool {
	items, tasks := 0, 0
	for {
		its, n, done, err := m.TakeOver(ctx, dead, e.opts.Consumer, e.opts.Batch)
		if ctx.Err() != nil && len(its) == 0 {
			return false
		}
		e.obs.OnStoreCall("takeover", err)
		items, tasks = items+len(its), tasks+n
		if (n > 0 || len(its) > 0) && e.opts.OnTakeover != nil {
			e.opts.OnTakeover(dead, len(its), n) // before Process: the runtimes may start at once
		}
		if len(its) > 0 {
			byPart := map[int]int{}
			for _, it := range its {
				byPart[it.Partition]++
			}
			for p, k := range byPart {
				e.obs.OnReclaim(p, k)
			}
			// Ours now, whatever ctx does.
			e.Process(context.WithoutCancel(ctx), its)
		}
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("taking over from a silent engine failed; retrying", "dead", dead, "err", err)
			}
			return false
		}
		if done {
			break
		}
	}
	removed, err := m.Forget(ctx, dead)
	if removed || items > 0 || tasks > 0 {
		e.log.Info("took over from an engine that stopped heartbeating", "dead", dead, "silent", silent.Round(time.Millisecond),
			"items", items, "tasks", tasks)
	}
	return err == nil
}
