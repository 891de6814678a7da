package interpreter

import (
	"fmt"
	"time"
)

// This file enforces an activity attempt's start-to-close timeout
// (`timeout:`), whose durable timer (Pending.TimerID) is due at the
// attempt's deadline. An attempt is failed by it only if its activity did
// not finish in time: an outcome carries when the activity finished (its
// event's time, set by whoever ran it), however late it reaches the
// store. So when the timer fires the engine asks the store about the task
// (Event.Probe, as for watches, see watch.go):
//   - queued and not taken: nothing can have finished; the attempt fails
//     as ActivityTimeout now;
//   - a worker holds it, the task is closed (its outcome is queued behind
//     the timer), or the store did not answer: an outcome may be on the
//     way, held by a runtime through an outage. The attempt waits
//     timeoutGrace more (Pending.Overdue keeps the deadline); an outcome
//     that finished by the deadline is taken, a later one fails the
//     attempt as ActivityTimeout, and if none comes the grace timer fails
//     it;
//   - no probe (a Store that cannot answer, such as the offline
//     simulator's): it fails now, as before probes.

// timeoutGrace is how long an attempt whose timeout fired waits for an
// outcome that may have finished in time. The activity runtime retries a
// held outcome at least once a second once the store is back, so a few
// seconds is enough; it is also how late a real timeout of a task a
// worker holds is reported.
const timeoutGrace = 5 * time.Second

// activityTimerFired applies an attempt's timeout timer: the deadline, or
// the end of its grace (see the top of this file).
func (r *run) activityTimerFired(th *Thread, p *Pending, ev Event) error {
	p.TimerID = ""
	if pr := ev.Probe; p.Overdue == nil && pr != nil && (pr.Unknown || pr.Taken || !pr.Open) {
		deadline := r.now
		if p.Deadline != nil {
			deadline = *p.Deadline
		}
		due := r.now.Add(timeoutGrace).UTC()
		p.Overdue = &deadline
		p.TimerID, p.Deadline = r.newTimer(th, due), &due
		return nil
	}
	r.cancelTask(th) // a worker may still hold it, or it may still be queued
	return r.timedOut(th)
}

// finishedLate reports whether an outcome of p's attempt came after its
// timeout fired and finished after the deadline: the attempt timed out.
func (r *run) finishedLate(p *Pending, ev Event) bool {
	return p != nil && p.Overdue != nil && ev.Time.After(*p.Overdue)
}

// timedOut fails th's attempt as ActivityTimeout: a retryable failure.
func (r *run) timedOut(th *Thread) error {
	return r.activityFailed(th, ErrorInfo{
		Type:      ErrTypeActTimeout,
		Message:   fmt.Sprintf("activity %s did not finish within its timeout", th.Pending.Activity),
		Retryable: true,
	})
}
