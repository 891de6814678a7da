package interpreter

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// InstanceID names one workflow instance.
type InstanceID string

// RuntimeStatus is an instance's lifecycle state. The strings are persisted
// and are the Durable Functions names; never renumber or rename them.
type RuntimeStatus string

// The statuses of a live instance.
const (
	StatusPending   RuntimeStatus = "Pending"
	StatusRunning   RuntimeStatus = "Running"
	StatusSuspended RuntimeStatus = "Suspended"
)

// The statuses of an ended instance (Terminal).
const (
	StatusCompleted  RuntimeStatus = "Completed"
	StatusFailed     RuntimeStatus = "Failed"
	StatusTerminated RuntimeStatus = "Terminated"
)

// Terminal reports whether no further transition can happen.
func (s RuntimeStatus) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusTerminated
}

// ParseRuntimeStatus maps a name (case-insensitive) to a RuntimeStatus.
func ParseRuntimeStatus(s string) (RuntimeStatus, bool) {
	for _, v := range []RuntimeStatus{StatusPending, StatusRunning, StatusSuspended, StatusCompleted, StatusFailed, StatusTerminated} {
		if strings.EqualFold(string(v), s) {
			return v, true
		}
	}
	return "", false
}

// Frame is one level of the cursor: the next step to run in a step list.
type Frame struct {
	Block dsl.BlockID `json:"b"`
	Index int         `json:"i"`
	// Iter counts the iterations of the while at Index (0 when the step
	// there has not started looping).
	Iter int `json:"n,omitempty"`
	// Saved is, for an onError or catch list, the thread's own value of
	// the error variable before the list set it (nil = it had none), put
	// back when the list is left.
	Saved json.RawMessage `json:"sv,omitempty"`
}

// WaitKind says what a blocked instance waits for.
type WaitKind string

const (
	WaitActivity WaitKind = "activity"
	WaitEvent    WaitKind = "event"
	WaitTimer    WaitKind = "timer"
	WaitRetry    WaitKind = "retry" // the delay before an activity's next attempt
	// WaitBranches: a parallel or forEach step waits for its branches.
	WaitBranches WaitKind = "branches"
	// WaitYield: a transition ran its share of steps; the thread goes on in
	// the next one, on a timer due at once.
	WaitYield WaitKind = "yield"
	// WaitChild: a call step waits for its child instance.
	WaitChild WaitKind = "child"
)

// Pending describes what a blocked instance waits for.
type Pending struct {
	Kind     WaitKind   `json:"kind"`
	StepID   dsl.StepID `json:"step"`
	Activity string     `json:"activity,omitempty"` // activity name (activity/retry)
	TaskID   string     `json:"task,omitempty"`     // the scheduled task (activity)
	// Queue is the scheduled task's queue (activity), so the store can
	// find it without the definition (to withdraw or park it).
	Queue   string `json:"queue,omitempty"`
	Attempt int    `json:"attempt,omitempty"` // 1-based attempt (activity/retry)
	// FirstAttempt is when attempt 1 was scheduled, for RetryTimeout.
	FirstAttempt time.Time `json:"first,omitzero"`
	Event        string    `json:"event,omitempty"` // event name (event)
	// Events are the events an `any` or `all` wait still waits for; Got
	// those an `all` has received, in order of arrival.
	Events   []string   `json:"events,omitempty"`
	All      bool       `json:"all,omitempty"`
	Got      []string   `json:"got,omitempty"`
	TimerID  string     `json:"timer,omitempty"` // the timer that ends the wait, if any
	Deadline *time.Time `json:"until,omitempty"` // when TimerID fires
	// Branches and Done count the branches of a parallel or forEach step
	// and those that have ended (branches).
	Branches int `json:"branches,omitempty"`
	Done     int `json:"done,omitempty"`
	// Child is the instance a call step waits for (child); TimerID is then
	// the timer that checks it exists, and Attempt counts the checks.
	Child InstanceID `json:"child,omitempty"`
	// WatchID is the timer that checks on an attempt's task for its
	// scheduleToStart and heartbeat timeouts, due at WatchDue; Started
	// records that a worker was seen holding the task (activity; see
	// watch.go).
	WatchID  string     `json:"watch,omitempty"`
	WatchDue *time.Time `json:"watchDue,omitempty"`
	Started  bool       `json:"started,omitempty"`
	// StartBy is when the attempt's scheduleToStart timeout ends: the
	// task was queued then minus the timeout (activity).
	StartBy *time.Time `json:"startBy,omitempty"`
	// Overdue is the attempt's deadline once its timeout fired while its
	// outcome could still be on the way (a worker held the task, or the
	// store could not say): TimerID and Deadline are then the grace timer,
	// and an outcome that finished by Overdue is taken (activity; see
	// timeout.go).
	Overdue *time.Time `json:"overdue,omitempty"`
}

// waitsFor reports whether an event wait takes an event of this name.
func (p *Pending) waitsFor(name string) bool {
	if p.Kind != WaitEvent {
		return false
	}
	if p.Event == name {
		return true
	}
	for _, e := range p.Events {
		if e == name {
			return true
		}
	}
	return false
}

// Thread is one branch of a parallel or forEach step: its own cursor, what
// it waits for and the variables it set. The main path of the instance is
// State.Cursor, State.Pending and State.Vars.
type Thread struct {
	// ID is the parent's id, "/" (unless the parent is the main path), the
	// step's id, "/" and the branch number: "fan/3", "fan/3/inner/0".
	ID      string                     `json:"id"`
	Parent  string                     `json:"parent,omitempty"` // "" = the main path
	Branch  int                        `json:"n"`                // its index among the step's branches
	Cursor  []Frame                    `json:"c,omitempty"`
	Pending *Pending                   `json:"p,omitempty"`
	Vars    map[string]json.RawMessage `json:"v,omitempty"` // set in this branch; it sees its parents' too
}

// Join is a parallel or forEach step waiting for its branches.
type Join struct {
	Thread  string            `json:"th"` // the waiting thread ("" = the main path)
	StepID  dsl.StepID        `json:"step"`
	Items   []json.RawMessage `json:"items,omitempty"` // forEach: the items, evaluated once
	Total   int               `json:"total"`
	Started int               `json:"started"`
	// Results holds, per branch, the object of the variables it set; nil
	// until the branch ends.
	Results []json.RawMessage `json:"res"`
}

// ErrorInfo is a failure: of an activity, of an expression, of the instance.
type ErrorInfo struct {
	Type    string     `json:"type"`
	Message string     `json:"message"`
	StepID  dsl.StepID `json:"step,omitempty"`
	Attempt int        `json:"attempt,omitempty"`
	// Retryable is set by whoever reports an activity failure; a false
	// value stops retries.
	Retryable bool `json:"retryable,omitempty"`
	// Data is what a fail step attached to the error.
	Data JSONText `json:"data,omitempty"`
}

// JSONText is a JSON value kept as its text in a string, so that the
// structs holding it stay comparable; "" is absent.
type JSONText string

// MarshalJSON writes the text as is (null when absent).
func (j JSONText) MarshalJSON() ([]byte, error) {
	if j == "" {
		return []byte("null"), nil
	}
	return []byte(j), nil
}

// UnmarshalJSON keeps the text.
func (j *JSONText) UnmarshalJSON(b []byte) error {
	*j = JSONText(b)
	return nil
}

// BufferedEvent is an external event that arrived while no wait wanted it.
type BufferedEvent struct {
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
	Time time.Time       `json:"time"`
}

// State is everything the engine persists about one instance. The store
// writes it back atomically after each transition.
type State struct {
	ID       InstanceID    `json:"id"`
	Name     string        `json:"name"` // workflow name
	DefHash  string        `json:"def"`  // definition content hash it runs on
	Status   RuntimeStatus `json:"status"`
	Revision int64         `json:"rev"` // bumped by every commit; compare-and-set guard

	Input        json.RawMessage `json:"input,omitempty"`  // nil = null
	Output       json.RawMessage `json:"output,omitempty"` // nil = null; for Failed the ErrorInfo; for Terminated the reason
	CustomStatus json.RawMessage `json:"custom,omitempty"` // nil = never set

	Vars    map[string]json.RawMessage `json:"vars,omitempty"`
	Cursor  []Frame                    `json:"cursor,omitempty"`
	Pending *Pending                   `json:"pending,omitempty"`
	// Buffered holds external events no wait has consumed yet, FIFO per name.
	Buffered []BufferedEvent `json:"buffered,omitempty"`
	// Held holds events that arrived while Suspended, applied on resume.
	Held []Event `json:"held,omitempty"`
	// MsgSeq is the sequence number of the last client message (raised
	// event, terminate, suspend, resume) applied; Early holds messages that
	// arrived ahead of an earlier one, in sequence order, until it comes.
	MsgSeq int64   `json:"mseq,omitempty"`
	Early  []Event `json:"early,omitempty"`
	// Seq numbers tasks and timers so their ids are unique per instance.
	Seq int64 `json:"seq"`
	// Threads are the live branches of parallel and forEach steps, in the
	// order they started; Joins the steps waiting for them.
	Threads []Thread `json:"threads,omitempty"`
	Joins   []Join   `json:"joins,omitempty"`
	// Timeout is the workflow's own timeout timer, when it has one.
	Timeout *Timer `json:"timeout,omitempty"`
	// Generation counts the continueAsNew restarts; Input is the current
	// run's.
	Generation int `json:"gen,omitempty"`
	// Parent is the instance whose call step started this one ("" = none);
	// it hears of this one's end.
	Parent InstanceID `json:"parent,omitempty"`
	// TraceParent is the trace context (a W3C traceparent) the instance
	// was started under, or its parent's for a child; "" = none. Its
	// transitions and activity tasks are traced as part of that trace.
	TraceParent string `json:"trace,omitempty"`

	CreatedTime     time.Time `json:"created"`
	LastUpdatedTime time.Time `json:"updated"`
}

// Timer is a durable timer the instance owns.
type Timer struct {
	ID  string    `json:"id"`
	Due time.Time `json:"due"`
}

// CurrentStep returns the id of the step the instance is on ("" when none).
func (s *State) CurrentStep() dsl.StepID {
	if s.Pending != nil {
		return s.Pending.StepID
	}
	return ""
}

// clone returns a copy of s that shares no slice or map a Step call
// may change.
func (s *State) clone() *State {
	c := *s
	c.Vars = cloneVars(s.Vars)
	if s.Cursor != nil {
		// Room for two more frames, which entering a switch, loop or
		// try would otherwise grow the copy for.
		c.Cursor = append(make([]Frame, 0, len(s.Cursor)+2), s.Cursor...)
	}
	c.Buffered = append([]BufferedEvent(nil), s.Buffered...)
	c.Held = append([]Event(nil), s.Held...)
	c.Early = append([]Event(nil), s.Early...)
	c.Pending = s.Pending.clone()
	if s.Threads != nil {
		c.Threads = make([]Thread, len(s.Threads))
		for i, t := range s.Threads {
			t.Cursor = append([]Frame(nil), t.Cursor...)
			t.Pending = t.Pending.clone()
			t.Vars = cloneVars(t.Vars)
			c.Threads[i] = t
		}
	}
	if s.Joins != nil {
		c.Joins = make([]Join, len(s.Joins))
		for i, j := range s.Joins {
			j.Items = append([]json.RawMessage(nil), j.Items...)
			j.Results = append([]json.RawMessage(nil), j.Results...)
			c.Joins[i] = j
		}
	}
	if s.Timeout != nil {
		t := *s.Timeout
		c.Timeout = &t
	}
	return &c
}

func (p *Pending) clone() *Pending {
	if p == nil {
		return nil
	}
	c := *p
	c.Events = append([]string(nil), p.Events...)
	c.Got = append([]string(nil), p.Got...)
	return &c
}

func cloneVars(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	c := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// EventKind names a work item applied to an instance. The strings are
// persisted; never rename them.
type EventKind string

// The work items of the instance's own making: its start, the outcomes
// of its activities, its timers.
const (
	EvStart     EventKind = "ExecutionStarted"
	EvCompleted EventKind = "TaskCompleted"
	EvFailed    EventKind = "TaskFailed"
	EvTimer     EventKind = "TimerFired"
)

// The client messages, which Event.Seq numbers in the order the store
// accepted them.
const (
	EvRaised    EventKind = "EventRaised"
	EvTerminate EventKind = "ExecutionTerminated"
	EvSuspend   EventKind = "ExecutionSuspended"
	EvResume    EventKind = "ExecutionResumed"
)

// Event is one work item for an instance: the "event" of
// Step(definition, state, event).
type Event struct {
	Kind   EventKind       `json:"k"`
	Time   time.Time       `json:"t"`              // when it was enqueued; now() of the steps it runs
	TaskID string          `json:"task,omitempty"` // EvCompleted, EvFailed
	Timer  string          `json:"timer,omitempty"`
	Name   string          `json:"name,omitempty"` // EvRaised: event name
	Data   json.RawMessage `json:"data,omitempty"` // EvRaised payload, EvCompleted result
	Error  *ErrorInfo      `json:"err,omitempty"`  // EvFailed
	Reason string          `json:"reason,omitempty"`
	// Seq orders the client messages of one instance: the store numbers
	// them 1, 2, 3… as they are accepted, so the interpreter applies them
	// in that order even when a crashed engine's lease delays one. 0 for
	// everything else (start, completions, timers).
	Seq int64 `json:"seq,omitempty"`
	// Init, on an EvStart item only, is what the instance was created with,
	// so an engine can build its first state without loading it (see
	// InitialState). Stores that do not set it cost one load.
	Init *StartInfo `json:"init,omitempty"`
	// Probe, on an EvTimer of an activity attempt's watch only, is what
	// the store said of the task when the engine read the timer (see
	// watch.go); it is never stored.
	Probe *TaskProbe `json:"probe,omitempty"`
}

// StartInfo is the part of a new instance's state that is not implied by
// its start event.
type StartInfo struct {
	Name    string          `json:"n"`
	DefHash string          `json:"d"`
	Input   json.RawMessage `json:"in,omitempty"`
	Parent  InstanceID      `json:"pa,omitempty"`
	Trace   string          `json:"tr,omitempty"` // State.TraceParent
}

// InitialState is the state a new instance was created with, rebuilt from
// its start event (nil without Init): Pending at revision 0, created at
// the event's time.
func InitialState(id InstanceID, ev Event) *State {
	if ev.Kind != EvStart || ev.Init == nil {
		return nil
	}
	t := ev.Time.UTC()
	return &State{
		ID: id, Name: ev.Init.Name, DefHash: ev.Init.DefHash, Status: StatusPending,
		Input: ev.Init.Input, Parent: ev.Init.Parent, TraceParent: ev.Init.Trace,
		CreatedTime: t, LastUpdatedTime: t,
	}
}

// Command is an effect the store must apply in the same commit as the new
// state. It is one of *ScheduleTask, *CancelTask, *StartTimer,
// *CancelTimer; or, applied by the engine after the commit, *StartChild or
// *TerminateChild.
type Command interface{ isCommand() }

// ScheduleTask enqueues an activity task for the activity runtime.
type ScheduleTask struct {
	TaskID   string          `json:"task"`
	Instance InstanceID      `json:"instance"`
	Activity string          `json:"activity"`
	Input    json.RawMessage `json:"input"`
	Attempt  int             `json:"attempt"`
	StepID   dsl.StepID      `json:"step"`
	DefHash  string          `json:"def"` // so the runtime can read the activity's binding
	Workflow string          `json:"workflow"`
	// Queue is the task stream it goes to: "local" for activities the
	// in-process runtime runs (go, http, expr bindings), else the activity
	// name, where external workers long-poll for it.
	Queue string `json:"queue"`
	// Timeout is the start-to-close limit (0 = none), so the runtime can
	// stop waiting; the interpreter enforces it with a durable timer too.
	Timeout time.Duration `json:"timeout,omitempty"`
	// ScheduleToStart is how long the task may wait for a worker to take
	// it, and Heartbeat how long a worker that took it may go without a
	// heartbeat (0 = no limit); the interpreter enforces both with a
	// durable timer (see Pending.WatchID), and a worker heartbeats well
	// within Heartbeat.
	ScheduleToStart time.Duration `json:"scheduleToStart,omitempty"`
	Heartbeat       time.Duration `json:"heartbeat,omitempty"`
	// Trace is the instance's State.TraceParent, so the attempt is traced
	// in the instance's trace and http bindings send it on.
	Trace string `json:"trace,omitempty"`
}

// LocalQueue is the task queue of the in-process activity runtime.
const LocalQueue = "local"

// CancelTask withdraws a scheduled task the instance no longer waits for:
// the instance ended or continued as new, the branch waiting for it was
// dropped, or the attempt timed out. The store removes it from its queue in
// the same commit, so no consumer is handed it, and tells its holder, if
// any, to stop.
type CancelTask struct {
	TaskID string
	Queue  string // the queue it was scheduled on (ScheduleTask.Queue)
}

// StartTimer asks for an EvTimer work item with Timer = ID at Due.
type StartTimer struct {
	ID  string
	Due time.Time
}

// CancelTimer drops a timer that is no longer wanted; a timer that already
// fired is ignored by the interpreter anyway.
type CancelTimer struct {
	ID  string
	Due time.Time
}

// StartChild asks the engine, once the transition is committed, to make
// sure the child instance ID exists: to create it (Workflow at its latest
// version, with Input and Parent) when it does not, or, when it has already
// finished, to send its outcome to the parent again. It is repeated on a
// timer while the parent waits, so a crash between the commit and the
// creation, or a lost outcome, only delays the call. The store does not
// see it.
type StartChild struct {
	ID       InstanceID
	Parent   InstanceID
	Workflow string
	Input    json.RawMessage
	Trace    string // the parent's TraceParent, which the child inherits
}

// TerminateChild asks the engine, once the transition is committed, to
// terminate a child whose parent no longer waits for it (the parent ended,
// or the branch that called it was cancelled). The store does not see it.
type TerminateChild struct {
	ID     InstanceID
	Reason string
}

func (*ScheduleTask) isCommand()   {}
func (*CancelTask) isCommand()     {}
func (*StartTimer) isCommand()     {}
func (*CancelTimer) isCommand()    {}
func (*StartChild) isCommand()     {}
func (*TerminateChild) isCommand() {}

// ChildEvent is the name of the internal event that brings a child's end
// to its parent (an EvRaised whose Data is a ChildResult). It holds a
// control character, which no client can put in an event name (the API
// refuses them) and no wait can name, so it cannot be forged or consumed
// by a workflow.
const ChildEvent = "\x1fchild"

// ChildResult is how a child instance ended.
type ChildResult struct {
	Child  InstanceID      `json:"child"`
	Status RuntimeStatus   `json:"status"`
	Output json.RawMessage `json:"output,omitempty"`
}

// HistoryEvent is one line of an instance's bounded history.
type HistoryEvent struct {
	Type      string          `json:"EventType"`
	Timestamp time.Time       `json:"Timestamp"`
	StepID    dsl.StepID      `json:"StepId,omitempty"`
	Name      string          `json:"Name,omitempty"` // activity / event / function name
	Data      json.RawMessage `json:"Data,omitempty"` // input/result/status/output
	Attempt   int             `json:"Attempt,omitempty"`
	Reason    string          `json:"Reason,omitempty"`
}

// Transition is the outcome of applying one Event: the new state, the
// commands to apply with it and the history lines to append, all committed
// atomically.
type Transition struct {
	State    *State
	Commands []Command
	History  []HistoryEvent
	// FromRevision is the revision the transition was computed from; the
	// commit succeeds only if the stored revision still equals it.
	FromRevision int64
	// WorkID is the store's id of the work item it consumed, acknowledged
	// inside the commit ("" for none).
	WorkID string
	// Statuses records whether CustomStatus or Status changed, so the store
	// publishes a change notice only when something a client sees changed.
	StatusChanged bool
	// TaskAck, when set, is the activity task whose outcome the transition
	// consumed straight from the runtime (Engine.ApplyTaskOutcome) instead
	// of from a work item: the commit acknowledges that task, and fails with
	// ErrDuplicate when it was acknowledged already.
	TaskAck *TaskRef
	// Message, when not 0, is the number the transition gave the client
	// message it applied straight from the API (Engine.RaiseEvent) instead
	// of from a work item: the commit fails with ErrConflict unless the
	// store has numbered exactly Message-1 of the instance's messages (so
	// none waits to be applied before this one), and counts this one.
	Message int64
}
