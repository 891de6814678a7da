package interpreter

// This file runs schedules against a store: which schedules are deployed
// (the `schedules:` of each workflow's latest version), their durable
// state, and the start of each tick's instance.
//
// Exactly once: a tick's instance has the id <schedule>-<tick in UTC>, and
// is created with CreateInstanceOnce, which refuses an id that was ever
// used (ErrExists); so however many schedulers race on one tick, or retry
// it after a crash, one instance starts. The schedule's state (next tick,
// last run, pause) moves by compare-and-set, so each tick is decided once;
// a scheduler that loses the race drops what it decided and reads again.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// ErrExists: CreateInstanceOnce found the id already used (by a running or a
// finished instance).
var ErrExists = errors.New("instance id already used")

// ErrUnknownSchedule: no deployed workflow declares a schedule of that id.
var ErrUnknownSchedule = errors.New("unknown schedule")

// ScheduleState is the durable state of one schedule.
type ScheduleState struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
	// Rule is the rule Next was computed from (Rule()); a deployment that
	// changes it recomputes Next.
	Rule string    `json:"rule"`
	Next time.Time `json:"next"` // the next tick to decide
	// LastRun is the tick of the last instance started, LastInstance its id.
	LastRun      time.Time  `json:"lastRun,omitzero"`
	LastInstance InstanceID `json:"lastInstanceId,omitempty"`
	Paused       bool       `json:"paused"`
	// PausedBy is the definition hash under which the API paused or
	// resumed the schedule; "" = the file's `paused:` holds. A new version
	// of the workflow brings the file's value back.
	PausedBy string `json:"pausedBy,omitempty"`
	// Buffered is the tick that waits for the running instance to end
	// (overlap bufferOne); zero = none.
	Buffered time.Time `json:"buffered,omitzero"`
	// Rev is the stored revision: SaveScheduleState writes only when the
	// stored one still equals it, and then stores Rev+1. 0 = not stored.
	Rev int64 `json:"rev"`
}

// ScheduleStore is what schedules need from the store.
type ScheduleStore interface {
	ListDefinitions(ctx context.Context) ([]DefinitionInfo, error)
	// LoadScheduleStates returns the stored state of every schedule by id.
	LoadScheduleStates(ctx context.Context) (map[string]*ScheduleState, error)
	// SaveScheduleState stores st when the stored revision is st.Rev (0:
	// none is stored), as revision st.Rev+1; ErrConflict otherwise.
	SaveScheduleState(ctx context.Context, st *ScheduleState) error
	// CreateInstanceOnce is CreateInstance for an id never used before:
	// ErrExists when an instance of that id exists, running or finished.
	CreateInstanceOnce(ctx context.Context, n NewInstance) error
	FetchStatus(ctx context.Context, id InstanceID) (*InstanceStatus, error)
	SendControl(ctx context.Context, id InstanceID, ev Event) error
}

// DefinitionGetter returns parsed definitions (*Catalog is one).
type DefinitionGetter interface {
	Get(ctx context.Context, name, hash string) (*dsl.Workflow, error)
}

// ScheduleObserver hears of each tick decided (for metrics); an engine's
// Observer that also implements it is told.
type ScheduleObserver interface {
	// OnScheduleRun: a tick of schedule was started, skipped (overlap) or
	// missed (later than its catchupWindow).
	OnScheduleRun(schedule, outcome string)
}

// Outcomes of a tick.
const (
	OutcomeStarted = "started"
	OutcomeSkipped = "skipped"
	OutcomeMissed  = "missed"
	// OutcomeBuffered: overlap bufferOne keeps the tick until the running
	// instance ends (not a metric outcome: it becomes started or skipped).
	OutcomeBuffered = "buffered"
	// OutcomeFailed: the tick's input could not be computed or broke the
	// workflow's input schema; nothing started.
	OutcomeFailed = "failed"
)

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Clock    func() time.Time // default time.Now
	Logger   *slog.Logger
	Observer ScheduleObserver // nil = none
	// Every is how often Run decides due ticks (default 1s).
	Every time.Duration
}

// Scheduler starts the instances of schedules' ticks. Any number may run on
// one store; each tick starts once.
type Scheduler struct {
	store ScheduleStore
	defs  DefinitionGetter
	opts  SchedulerOptions
	log   *slog.Logger
}

// NewScheduler returns a Scheduler; Run starts it.
func NewScheduler(store ScheduleStore, defs DefinitionGetter, opts SchedulerOptions) *Scheduler {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	return &Scheduler{store: store, defs: defs, opts: opts, log: opts.Logger.With("component", "scheduler")}
}

// Deployed is one schedule of a workflow's latest version with its state.
type Deployed struct {
	Schedule *dsl.Schedule
	Workflow *dsl.Workflow
	// State is the stored state; nil when no scheduler has stored one yet.
	State *ScheduleState
}

// Rule names a schedule's rule, so a deployment that changes it is seen.
func Rule(s *dsl.Schedule) string {
	if s.Cron != nil {
		return "cron " + s.Cron.Source + " " + s.Timezone
	}
	return "every " + s.Every.String()
}

// Run decides due ticks every opts.Every until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	tick := time.NewTicker(s.opts.Every)
	defer tick.Stop()
	for {
		if err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("deciding schedule ticks failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Schedules returns every deployed schedule with its state, sorted by id.
// When two workflows declare one id (a deployment raced the check), the
// workflow first by name keeps it and the other's is left out, logged.
func (s *Scheduler) Schedules(ctx context.Context) ([]Deployed, error) {
	infos, err := s.store.ListDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	states, err := s.store.LoadScheduleStates(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	byID := map[string]Deployed{}
	for _, info := range infos {
		if info.Latest == "" {
			continue
		}
		wf, err := s.defs.Get(ctx, info.Name, info.Latest)
		if err != nil {
			if errors.Is(err, ErrBrokenDefinition) {
				s.log.Warn("a deployed workflow does not parse; its schedules do not run", "workflow", info.Name, "err", err)
				continue
			}
			return nil, err
		}
		for _, sc := range wf.Schedules {
			if d, dup := byID[sc.ID]; dup {
				s.log.Warn("two workflows declare one schedule id; the first keeps it", "schedule", sc.ID, "kept", d.Workflow.Name, "dropped", wf.Name)
				continue
			}
			byID[sc.ID] = Deployed{Schedule: sc, Workflow: wf, State: states[sc.ID]}
		}
	}
	out := make([]Deployed, 0, len(byID))
	for _, d := range byID {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Schedule.ID < out[j].Schedule.ID })
	return out, nil
}

// Schedule returns one deployed schedule; ErrUnknownSchedule when none has
// that id.
func (s *Scheduler) Schedule(ctx context.Context, id string) (Deployed, error) {
	all, err := s.Schedules(ctx)
	if err != nil {
		return Deployed{}, err
	}
	for _, d := range all {
		if d.Schedule.ID == id {
			return d, nil
		}
	}
	return Deployed{}, fmt.Errorf("schedule %q: %w", id, ErrUnknownSchedule)
}

// NextRun is when the schedule ticks next as things stand: zero while it
// is paused.
func (d Deployed) NextRun(now time.Time) time.Time {
	st := d.effective(now)
	if st.Paused {
		return time.Time{}
	}
	return st.Next
}

// effective is the state with the deployed file applied (a new rule, the
// file's pause), as the next pass would store it.
func (d Deployed) effective(now time.Time) ScheduleState {
	var st ScheduleState
	if d.State != nil {
		st = *d.State
	} else {
		st = ScheduleState{ID: d.Schedule.ID, Paused: d.Schedule.Paused}
	}
	st.Workflow = d.Workflow.Name
	if rule := Rule(d.Schedule); st.Rule != rule {
		st.Rule, st.Next = rule, NextTick(d.Schedule, now)
	}
	if st.PausedBy != "" && st.PausedBy != d.Workflow.Hash {
		st.PausedBy = ""
	}
	if st.PausedBy == "" {
		st.Paused = d.Schedule.Paused
	}
	return st
}

// RunOnce decides every tick due at the clock's now.
func (s *Scheduler) RunOnce(ctx context.Context) error {
	all, err := s.Schedules(ctx)
	if err != nil {
		return err
	}
	now := s.opts.Clock()
	var first error
	for _, d := range all {
		if err := s.advance(ctx, d, now); err != nil && !errors.Is(err, ErrConflict) {
			s.log.Warn("deciding a schedule's ticks failed", "schedule", d.Schedule.ID, "err", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// advance decides d's due ticks, oldest first, and stores the state; on
// ErrConflict another scheduler stored first, and nothing of this pass's
// decisions counts (the instances it created are the ones the other
// recorded, by their ids).
func (s *Scheduler) advance(ctx context.Context, d Deployed, now time.Time) error {
	st := d.effective(now)
	changed := d.State == nil || st.Workflow != d.State.Workflow || st.Rule != d.State.Rule || !st.Next.Equal(d.State.Next) ||
		st.Paused != d.State.Paused || st.PausedBy != d.State.PausedBy
	var outcomes []string
	if st.Paused {
		// A paused schedule lets its ticks pass; resume starts from now.
		if !st.Next.After(now) {
			st.Next, changed = NextTick(d.Schedule, now), true
		}
	} else {
		if !st.Buffered.IsZero() {
			running, err := s.running(ctx, st.LastInstance)
			if err != nil {
				return err
			}
			if !running {
				out, err := s.start(ctx, d, &st, st.Buffered, now)
				if err != nil {
					return err
				}
				st.Buffered, changed = time.Time{}, true
				outcomes = append(outcomes, out)
			}
		}
		for i := 0; !st.Next.IsZero() && !st.Next.After(now) && i < 10000; i++ {
			tick := st.Next
			st.Next, changed = NextTick(d.Schedule, tick), true
			if now.Sub(tick) > d.Schedule.CatchupWindow {
				outcomes = append(outcomes, OutcomeMissed)
				continue
			}
			out, err := s.fire(ctx, d, &st, tick, now)
			if err != nil {
				return err
			}
			outcomes = append(outcomes, out)
		}
	}
	if !changed {
		return nil
	}
	if err := s.store.SaveScheduleState(ctx, &st); err != nil {
		return err
	}
	for _, o := range outcomes {
		if o == OutcomeBuffered {
			continue
		}
		if s.opts.Observer != nil {
			s.opts.Observer.OnScheduleRun(d.Schedule.ID, o)
		}
	}
	return nil
}

// running reports whether the instance id is Pending, Running or Suspended.
func (s *Scheduler) running(ctx context.Context, id InstanceID) (bool, error) {
	if id == "" {
		return false, nil
	}
	cur, err := s.store.FetchStatus(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return !cur.Status.Terminal(), nil
}

// fire applies the overlap policy to the tick and starts its instance
// when the policy lets it.
func (s *Scheduler) fire(ctx context.Context, d Deployed, st *ScheduleState, tick, now time.Time) (string, error) {
	pol := d.Schedule.Overlap
	if pol != dsl.OverlapAllowAll {
		running, err := s.running(ctx, st.LastInstance)
		if err != nil {
			return "", err
		}
		if running {
			switch pol {
			case dsl.OverlapSkip:
				return OutcomeSkipped, nil
			case dsl.OverlapBufferOne:
				if !st.Buffered.IsZero() {
					return OutcomeSkipped, nil
				}
				st.Buffered = tick
				return OutcomeBuffered, nil
			case dsl.OverlapTerminatePrevious:
				reason := fmt.Sprintf("schedule %s: the tick of %s terminates it (overlap terminatePrevious)", d.Schedule.ID, tick.UTC().Format(time.RFC3339))
				err := s.store.SendControl(ctx, st.LastInstance, Event{Kind: EvTerminate, Time: now, Reason: reason})
				if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinished) {
					return "", err
				}
			}
		}
	}
	return s.start(ctx, d, st, tick, now)
}

// start creates the tick's instance, unless it exists already (another
// scheduler, or this one before a crash, started it).
func (s *Scheduler) start(ctx context.Context, d Deployed, st *ScheduleState, tick, now time.Time) (string, error) {
	id := InstanceID(d.Schedule.InstanceID(tick))
	in, err := d.Schedule.EvalInput(tick)
	if err == nil && d.Workflow.Input != nil {
		if verr := d.Workflow.Input.Validate(in); verr != nil {
			err = fmt.Errorf("the input does not satisfy workflow %s's input schema: %w", d.Workflow.Name, verr)
		}
	}
	if err != nil {
		s.log.Warn("a schedule's tick starts nothing: its input fails", "schedule", d.Schedule.ID, "tick", tick, "err", err)
		return OutcomeFailed, nil
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("schedule %s: encoding the input: %w", d.Schedule.ID, err)
	}
	err = s.store.CreateInstanceOnce(ctx, Instantiate(d.Workflow, id, raw, now))
	if err != nil && !errors.Is(err, ErrExists) {
		return "", err
	}
	st.LastRun, st.LastInstance = tick, id
	return OutcomeStarted, nil
}

// SetPaused pauses or resumes the schedule id until the next deployment of
// its workflow. Resuming starts from the next tick after now: the ticks of
// the pause are not caught up.
func (s *Scheduler) SetPaused(ctx context.Context, id string, paused bool) error {
	return s.update(ctx, id, func(d Deployed, st *ScheduleState, now time.Time) error {
		if st.Paused && !paused {
			st.Next = NextTick(d.Schedule, now)
		}
		st.Paused, st.PausedBy = paused, d.Workflow.Hash
		return nil
	})
}

// Trigger starts one run of the schedule now (the tick is now, to the
// second), subject to its overlap policy, paused or not. It returns the
// outcome and the instance id the tick has.
func (s *Scheduler) Trigger(ctx context.Context, id string) (string, InstanceID, error) {
	var outcome string
	var inst InstanceID
	err := s.update(ctx, id, func(d Deployed, st *ScheduleState, now time.Time) error {
		tick := now.UTC().Truncate(time.Second)
		inst = InstanceID(d.Schedule.InstanceID(tick))
		var err error
		outcome, err = s.fire(ctx, d, st, tick, now)
		return err
	})
	if err == nil && outcome != OutcomeBuffered && s.opts.Observer != nil {
		s.opts.Observer.OnScheduleRun(id, outcome)
	}
	return outcome, inst, err
}

// update changes the schedule's state with f and stores it, reading again
// when another scheduler stored first.
func (s *Scheduler) update(ctx context.Context, id string, f func(Deployed, *ScheduleState, time.Time) error) error {
	for attempt := 0; ; attempt++ {
		d, err := s.Schedule(ctx, id)
		if err != nil {
			return err
		}
		now := s.opts.Clock()
		st := d.effective(now)
		if err := f(d, &st, now); err != nil {
			return err
		}
		err = s.store.SaveScheduleState(ctx, &st)
		if !errors.Is(err, ErrConflict) || attempt >= 10 {
			return err
		}
	}
}

// runSchedules runs a Scheduler beside the engine when its store keeps
// schedules, on the engine's clock; the engine's Observer hears the ticks
// when it is a ScheduleObserver.
func (e *Engine) runSchedules(ctx context.Context) {
	ss, ok := e.store.(ScheduleStore)
	if !ok {
		return
	}
	obs, _ := e.opts.Observer.(ScheduleObserver) // e.obs wraps it (outageLog)
	NewScheduler(ss, e.cat, SchedulerOptions{Clock: e.opts.Clock, Logger: e.log, Observer: obs}).Run(ctx)
}
