package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
)

// Engine returns the observer to give interpreter.EngineOptions.Observer:
// the metrics, and the traces of Options.TracerProvider.
func (m *Metrics) Engine() interpreter.Observer { return m.tracing.Engine(engineObserver{m}) }

// Activity returns the observer to give activity.Options.Observer: the
// metrics, the traces of Options.TracerProvider, and the instance's trace
// context on http bindings' requests (even with tracing off).
func (m *Metrics) Activity() activity.Observer { return m.tracing.Activity(activityObserver{m}) }

// finishedStatuses are the statuses cairn_instances_finished_total is
// created with for each workflow seen, so a rate over them starts at the
// first end rather than missing it.
var finishedStatuses = []interpreter.RuntimeStatus{
	interpreter.StatusCompleted, interpreter.StatusFailed, interpreter.StatusTerminated,
}

type engineObserver struct{ m *Metrics }

func (o engineObserver) OnTransition(t interpreter.TransitionInfo) {
	m := o.m
	m.transitions.WithLabelValues(t.Workflow).Inc()
	m.transitionDur.Observe(t.Duration.Seconds())
	if t.Event == interpreter.EvStart {
		m.started.WithLabelValues(t.Workflow).Inc()
		for _, s := range finishedStatuses {
			m.finished.WithLabelValues(t.Workflow, string(s))
		}
	}
	if t.To.Terminal() && !t.From.Terminal() {
		m.finished.WithLabelValues(t.Workflow, string(t.To)).Inc()
	}
}

func (o engineObserver) OnTimerFired(lag time.Duration) {
	// A timer moved to the work stream just before its due time (clocks
	// of two processes differ a little) is on time, not early.
	o.m.timerLag.Observe(max(lag, 0).Seconds())
}

func (o engineObserver) OnReclaim(_, items int) { o.m.reclaimed.Add(float64(items)) }

// OnScheduleRun counts a tick (interpreter.ScheduleObserver).
func (o engineObserver) OnScheduleRun(schedule, outcome string) {
	o.m.scheduleRuns.WithLabelValues(schedule, outcome).Inc()
}

func (o engineObserver) OnStoreCall(op string, err error) {
	if err != nil {
		o.m.StoreError(op)
	}
}

type activityObserver struct{ m *Metrics }

func (o activityObserver) TaskStarted(ctx context.Context, t activity.Task, waited time.Duration) context.Context {
	if waited >= 0 {
		o.m.activityWait.WithLabelValues(t.Activity).Observe(waited.Seconds())
	}
	return ctx
}

func (o activityObserver) TaskFinished(_ context.Context, t activity.Task, outcome string, d time.Duration) {
	if outcome == "" {
		o.m.activityAbandoned.WithLabelValues(t.Activity).Inc()
		return
	}
	o.m.activityRuns.WithLabelValues(t.Activity, outcome).Inc()
	o.m.activityDur.WithLabelValues(t.Activity).Observe(d.Seconds())
}

func (activityObserver) InjectTrace(context.Context, http.Header) {}
