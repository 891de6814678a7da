package interpreter

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// This file enforces an activity attempt's scheduleToStart and heartbeat
// timeouts with one durable timer per attempt, the watch
// (Pending.WatchID). Whether a worker has taken the task, and when it
// last heartbeated, only the store knows: when a watch fires, the engine
// asks it (TaskProber) and puts the answer on the timer's event
// (Event.Probe), so the interpreter stays pure and the hot path (an
// attempt without these timeouts, or a heartbeat) costs nothing more.
//
// The watch first fires the shorter of the two timeouts after the task
// was queued. Then:
//   - the task is closed (its outcome is on the way): the watch ends;
//   - no worker has taken it: once scheduleToStart has passed since the
//     task was queued (Pending.StartBy), the attempt fails as
//     ScheduleToStartTimeout; until then, or without one, the watch looks
//     again a heartbeat timeout later (or at StartBy, if sooner);
//   - a worker holds it: without a heartbeat timeout the watch ends;
//     with one, the attempt fails as HeartbeatTimeout when the worker has
//     been silent that long, else the watch fires again a heartbeat
//     timeout after its last heartbeat;
//   - a worker took it and no longer holds it (it handed it back when it
//     stopped): HeartbeatTimeout, with a heartbeat timeout.
// A heartbeat renews the task's lease in the store, which is the time the
// probe reads: it resets the deadline without touching the instance.

// Error types of the two timeouts; both are retryable.
const (
	ErrTypeScheduleToStart = "ScheduleToStartTimeout"
	ErrTypeHeartbeat       = "HeartbeatTimeout"
)

// watchRetry is how soon a watch looks again when its probe failed.
const watchRetry = 5 * time.Second

// TaskProbe is what the store knows of an attempt's task when its watch
// fires.
type TaskProbe struct {
	// Open: the task is queued, parked or held; not completed, failed or
	// withdrawn.
	Open bool `json:"open,omitempty"`
	// Taken: a worker holds it (delivered and not handed back); Idle is
	// then how long ago it was delivered or last heartbeated.
	Taken bool          `json:"taken,omitempty"`
	Idle  time.Duration `json:"idle,omitempty"`
	// Unknown: the engine asked and the store did not answer (it is
	// unavailable); the other fields say nothing.
	Unknown bool `json:"unknown,omitempty"`
}

// TaskProbeRef names the task a watch asks about.
type TaskProbeRef struct {
	Instance InstanceID
	TaskID   string
	Queue    string
}

// TaskProber is a Store that can say whether tasks were taken and when
// their holders last heartbeated; redisstore's Store is one. Over a
// Store without it, watches find nothing out and look again every
// watchRetry, so the two timeouts never fire.
type TaskProber interface {
	// ProbeTasks answers for each ref, in one round trip.
	ProbeTasks(ctx context.Context, refs []TaskProbeRef) ([]TaskProbe, error)
}

// startWatch starts the watch of a just-scheduled attempt, if its activity
// has either timeout.
func (r *run) startWatch(p *Pending, opts *dsl.ActivityOptions) {
	if opts == nil || (opts.ScheduleToStart <= 0 && opts.Heartbeat <= 0) {
		return
	}
	d := opts.Heartbeat
	if s := opts.ScheduleToStart; s > 0 {
		by := r.now.Add(s).UTC()
		p.StartBy = &by
		if d <= 0 || s < d {
			d = s
		}
	}
	r.armWatch(p, r.now.Add(d))
}

// armWatch sets p's watch to fire at due. Watches write no history lines:
// one fires every heartbeat timeout while an attempt runs.
func (r *run) armWatch(p *Pending, due time.Time) {
	due = due.UTC()
	p.WatchID = r.newID('w')
	p.WatchDue = &due
	r.command(&StartTimer{ID: p.WatchID, Due: due})
}

// cancelWatch drops p's watch, if any.
func (r *run) cancelWatch(p *Pending) {
	if p.WatchID != "" && p.WatchDue != nil {
		r.command(&CancelTimer{ID: p.WatchID, Due: *p.WatchDue})
	}
	p.WatchID, p.WatchDue = "", nil
}

// watchFired applies a fired watch (see the top of this file).
func (r *run) watchFired(th *Thread, ev Event) error {
	p := th.Pending
	p.WatchID, p.WatchDue = "", nil
	opts := r.def.Activities[p.Activity]
	if opts == nil {
		return nil // a new definition without the options: stop watching
	}
	pr := ev.Probe
	switch {
	case pr == nil || pr.Unknown:
		r.armWatch(p, r.now.Add(watchRetry))
	case !pr.Open:
	case pr.Taken:
		p.Started = true
		if opts.Heartbeat <= 0 {
			return nil
		}
		if pr.Idle >= opts.Heartbeat {
			return r.watchTimedOut(th, ErrTypeHeartbeat, fmt.Sprintf("activity %s: its worker sent no heartbeat for %s (heartbeat timeout %s)", p.Activity, pr.Idle.Round(time.Millisecond), opts.Heartbeat))
		}
		r.armWatch(p, r.now.Add(opts.Heartbeat-pr.Idle))
	case p.Started && opts.Heartbeat > 0:
		return r.watchTimedOut(th, ErrTypeHeartbeat, fmt.Sprintf("activity %s: its worker let the task go unfinished (heartbeat timeout %s)", p.Activity, opts.Heartbeat))
	case !p.Started && p.StartBy != nil && !r.now.Before(*p.StartBy):
		return r.watchTimedOut(th, ErrTypeScheduleToStart, fmt.Sprintf("activity %s: no worker took the task within its scheduleToStart timeout of %s", p.Activity, opts.ScheduleToStart))
	default: // not taken yet: look again
		next := time.Time{}
		if opts.Heartbeat > 0 {
			next = r.now.Add(opts.Heartbeat)
		}
		if by := p.StartBy; by != nil && !p.Started && (next.IsZero() || by.Before(next)) {
			next = *by
		}
		if !next.IsZero() {
			r.armWatch(p, next)
		}
	}
	return nil
}

// watchTimedOut fails an attempt whose watch found it late: a retryable
// failure, its task withdrawn so that no worker runs it on.
func (r *run) watchTimedOut(th *Thread, typ, msg string) error {
	r.cancelTask(th)
	return r.activityFailed(th, ErrorInfo{Type: typ, Message: msg, Retryable: true})
}

// watchOf returns the thread whose attempt's watch is timer, if any.
func (r *run) watchOf(timer string) *Thread {
	return r.find(func(p *Pending) bool { return p.WatchID != "" && p.WatchID == timer })
}

// WatchedTask returns the task that st's timer guards: the ref to probe
// when that timer fires; false when timer is neither an attempt's watch
// nor its timeout (see timeout.go).
func (st *State) WatchedTask(timer string) (TaskProbeRef, bool) {
	if timer == "" {
		return TaskProbeRef{}, false
	}
	check := func(p *Pending) (TaskProbeRef, bool) {
		if p != nil && p.TaskID != "" && (p.WatchID == timer || p.Kind == WaitActivity && p.TimerID == timer) {
			return TaskProbeRef{Instance: st.ID, TaskID: p.TaskID, Queue: p.Queue}, true
		}
		return TaskProbeRef{}, false
	}
	if ref, ok := check(st.Pending); ok {
		return ref, true
	}
	for i := range st.Threads {
		if ref, ok := check(st.Threads[i].Pending); ok {
			return ref, true
		}
	}
	return TaskProbeRef{}, false
}

// probeWatched asks the store about the tasks whose watches or timeouts
// fire in this round (timers of a chain with a state), in one round trip,
// and puts each answer on its event. A failed probe marks the events
// Unknown: the watches look again later, and a timeout waits its grace.
func (e *Engine) probeWatched(ctx context.Context, active []*chain) {
	prober, ok := e.store.(TaskProber)
	if !ok {
		return
	}
	var refs []TaskProbeRef
	var evs []*Event
	for _, c := range active {
		if c.st == nil {
			continue
		}
		for i := range c.items {
			ev := &c.items[i].Event
			if ev.Kind != EvTimer {
				continue
			}
			if ref, ok := c.st.WatchedTask(ev.Timer); ok {
				ev.Probe = nil
				refs, evs = append(refs, ref), append(evs, ev)
			}
		}
	}
	if len(refs) == 0 {
		return
	}
	probes, err := prober.ProbeTasks(ctx, refs)
	e.obs.OnStoreCall("probe", err)
	if err != nil {
		e.log.Warn("probing watched tasks failed; their watches look again later", "tasks", len(refs), "err", err)
		for _, ev := range evs {
			ev.Probe = &TaskProbe{Unknown: true}
		}
		return
	}
	for i, ev := range evs {
		pr := probes[i]
		ev.Probe = &pr
	}
}
