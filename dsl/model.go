// Package dsl turns cairn workflow YAML into a typed, position-carrying model with every expression compiled once.
package dsl

import (
	"fmt"
	"time"
)

// Pos is a 1-based line and column in a workflow source file.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// StepID identifies a step inside one workflow definition. It is the author's
// `id` when given, otherwise generated from the step's path (for example
// "steps[2]" or "check.case[0][1]"), so it is stable for a given source.
type StepID string

// BlockID identifies a list of steps: "" is the workflow's top-level list;
// nested lists are named after their owning step, e.g. "check#case0",
// "check#default", "wait1#onTimeout", "discount#onError".
type BlockID string

// Workflow is a parsed and compiled workflow definition. It is immutable after
// Parse and safe for concurrent use.
type Workflow struct {
	Name        string
	Description string
	File        string // the file name given to Parse, used in messages
	Source      []byte // the YAML exactly as given
	Hash        string // hex sha256 of Source: the definition's identity

	Input  *JSONSchema // nil when the workflow declares no input schema
	Status *JSONSchema // nil when the workflow declares no status schema

	Activities map[string]*ActivityOptions // options per activity name, from `activities:`
	// Events maps an event name to the JSON Schema of its payload, from
	// `events:`; an event not listed takes any payload.
	Events map[string]*JSONSchema

	// Warnings are the problems that do not stop the definition from
	// running (an undeclared activity, a property a schema does not list,
	// ...); Parse returns them here, not as its error.
	Warnings Issues

	// Timeout bounds each run of the workflow (from its start, or from
	// its last continueAsNew) to its end; 0 = none.
	Timeout time.Duration

	Steps []Step

	// Upgrades: some continueAsNew starts its next run on the latest
	// deployed version (it does not say version: same).
	Upgrades bool

	// Schedules are the `schedules:` entries, in source order.
	Schedules []*Schedule

	// Blocks maps every step list of the definition, including Steps under
	// BlockID(""), so a cursor frame can be resolved in O(1).
	Blocks map[BlockID][]Step
	// Owner maps every nested step list to the step it belongs to (the
	// switch of a case, the try of its catch, the step of an onError); the
	// top-level list has no owner.
	Owner map[BlockID]Step
	// ByID maps every step's id to the step.
	ByID map[StepID]Step
}

// ActivityOptions are the per-activity settings from the workflow's
// `activities:` section.
type ActivityOptions struct {
	Pos     Pos
	Timeout time.Duration // start-to-close; 0 = none
	// Input and Output are the JSON Schemas of the activity's input and
	// result (`input:` and `output:`); nil = not declared.
	Input, Output *JSONSchema
	Retry         *RetryPolicy // nil = a single attempt
	// Binding says how the activity runs; nil means the default binding
	// (an external worker). The activity runtime interprets it.
	Binding *Binding
	// ScheduleToStart is how long an attempt's task may wait for a worker
	// to take it before the attempt fails as ScheduleToStartTimeout; 0 =
	// for ever.
	ScheduleToStart time.Duration
	// Heartbeat is how long a worker that took the task may go without a
	// heartbeat before the attempt fails as HeartbeatTimeout; 0 = no
	// limit (beyond the lease of the in-process runtime).
	Heartbeat time.Duration
	// Concurrency caps the attempts run at once (`concurrency:`); nil =
	// the runtime's default for the binding.
	Concurrency *Concurrency
}

// Concurrency is an activity's own limit on attempts in flight: in each
// process, or across all of them when Global.
type Concurrency struct {
	Limit  int
	Global bool
}

// RetryPolicy: the delay before retry n (0-based) is FirstInterval ×
// Backoff^n, capped at MaxInterval, until MaxAttempts attempts in all or
// RetryTimeout since the first attempt.
type RetryPolicy struct {
	MaxAttempts   int           // ≥ 1; attempts in all, the first included
	FirstInterval time.Duration // > 0
	Backoff       float64       // ≥ 1; default 2
	MaxInterval   time.Duration // 0 = uncapped
	RetryTimeout  time.Duration // 0 = none
	// Retryable lists the error types of typed failures (an expr's
	// fail(), an http binding's errors:) that are retried; a typed
	// failure of any other type is final. Other failures keep their own
	// decision whatever it lists.
	Retryable []string
}

// Delay returns the delay before retry n (0-based).
func (r *RetryPolicy) Delay(n int) time.Duration {
	d := float64(r.FirstInterval)
	for i := 0; i < n; i++ {
		d *= r.Backoff
		if r.MaxInterval > 0 && d >= float64(r.MaxInterval) {
			return r.MaxInterval
		}
	}
	if r.MaxInterval > 0 && d > float64(r.MaxInterval) {
		return r.MaxInterval
	}
	return time.Duration(d)
}

// BindingKind is how an activity is executed.
type BindingKind string

const (
	BindWorker BindingKind = "worker" // an external worker long-polls for the task (default)
	BindGo     BindingKind = "go"     // a Go handler registered in-process
	BindHTTP   BindingKind = "http"   // POST the input as JSON to a URL
	BindExpr   BindingKind = "expr"   // a pure expression over the input, computed in-process
)

// Binding is the `binding`-related part of an activity's options.
type Binding struct {
	Kind    BindingKind
	URL     string
	Method  string
	Headers map[string]*Value
	Timeout time.Duration
	Expr    *Value // for BindExpr: evaluated with `input` in scope
	// The http binding's templates (http_binding.go): Query holds the
	// query parameters in the order written, Body the request body (nil:
	// the activity input), Errors the error type of a response status.
	Query  []QueryParam
	Body   *Value
	Errors map[int]string
	url    []urlPart       // URL cut at its ${ } parts; nil when it has none
	retry  map[string]bool // the activity's retry.retryable, for Retries
}

// Step is one step of a workflow. It is implemented only by the step types of
// this package; the interpreter dispatches on them with a type switch.
type Step interface {
	// Base returns the fields every step kind has.
	Base() *StepBase
	isStep()
}

// StepBase holds what every step has.
type StepBase struct {
	ID  StepID
	Pos Pos        // position of the step's mapping in the source
	If  *Condition // nil when the step has no `if`
	// OnError, when present (non-nil, possibly empty), runs when the step
	// fails — an activity after its last attempt, an expression, a wait's
	// timeout, a fail step, an error raised in a nested list and not handled
	// there — with the error in variable `error` ({type, message, step,
	// attempt, data}); then the workflow goes on after the step. nil = the
	// error goes up to the enclosing try or onError, or fails the instance.
	OnError      []Step
	OnErrorBlock BlockID
}

func (b *StepBase) Base() *StepBase { return b }
func (*StepBase) isStep()           {}

// ActivityStep calls an activity.
type ActivityStep struct {
	StepBase
	Activity string
	Input    *Value // nil = null input
	Result   string // variable that receives the result; "" = discard
}

// WaitStep waits for an external event, for several, or a durable timer.
type WaitStep struct {
	StepBase
	// Event wait: Event is non-empty. Several events: Events holds their
	// names (distinct, in source order) and All says whether every one must
	// come (`all`) or the first suffices (`any`).
	Event   string
	Events  []string
	All     bool
	Timeout *Value // duration ("60s") or number of seconds; nil = wait forever
	// Result receives the event's payload; for `any` {event, data} of the
	// event that came; for `all` an object from event name to payload (on
	// timeout, of the events that came).
	Result string
	// OnTimeout runs when the timeout fires; nil (HasOnTimeout false) fails
	// the instance with a timeout error.
	OnTimeout      []Step
	HasOnTimeout   bool
	OnTimeoutBlock BlockID

	// Timer wait: exactly one of Duration and Until is set.
	Duration *Value // duration string ("90s", "1h30m") or seconds
	Until    *Value // RFC 3339 time
}

// SetStatusStep sets the custom status.
type SetStatusStep struct {
	StepBase
	Value *Value
}

// Assignment is one `name: value` of a set step, in source order.
type Assignment struct {
	Name  string
	Pos   Pos
	Value *Value
}

// SetStep sets variables.
type SetStep struct {
	StepBase
	Vars []Assignment
}

// Case is one `when` branch of a switch.
type Case struct {
	Pos   Pos
	When  *Condition
	Steps []Step
	Block BlockID
}

// SwitchStep runs the first case whose condition holds, else Default.
type SwitchStep struct {
	StepBase
	Cases        []Case
	Default      []Step
	HasDefault   bool
	DefaultBlock BlockID
}

// ReturnStep completes the instance with a value.
type ReturnStep struct {
	StepBase
	Value *Value // nil = null output
}

// FailStep raises an error: it fails the instance unless an enclosing try
// or onError handles it.
type FailStep struct {
	StepBase
	Error   *Value // the error type, a name such as OutOfStock; catch can select on it
	Message *Value
	Data    *Value // any JSON value carried with the error; nil = none
}

// WhileStep runs Steps while Condition holds, at most Max times; one more
// iteration is the error LoopLimitExceeded.
type WhileStep struct {
	StepBase
	Condition *Condition
	Max       int
	Steps     []Step
	Block     BlockID
}

// TryStep runs Steps; an error raised in them and not handled there runs
// Catch instead of failing.
type TryStep struct {
	StepBase
	Steps []Step
	Block BlockID
	Catch Catch
}

// Catch is the handler of a try.
type Catch struct {
	Pos Pos
	// As names the variable that holds the error inside Steps ("error" by
	// default); it is not visible after them.
	As string
	// Errors lists the error types it handles; empty = every type.
	Errors []string
	Steps  []Step
	Block  BlockID
}

// Handles reports whether the catch takes errors of type typ.
func (c *Catch) Handles(typ string) bool {
	if len(c.Errors) == 0 {
		return true
	}
	for _, e := range c.Errors {
		if e == typ {
			return true
		}
	}
	return false
}

// ForEachStep runs Steps once per element of Items, each run in its own
// branch: the element is variable As, variables set in the body stay in it,
// and Result receives, in the order of the items, one object per run with
// the variables it set. Parallel runs up to MaxConcurrency of them at once
// (0 = all); otherwise one after the other. Inside Steps, IndexVar is the
// item's 0-based position.
type ForEachStep struct {
	StepBase
	Items          *Value
	As             string
	Parallel       bool
	MaxConcurrency int
	Steps          []Step
	Block          BlockID
	Result         string
	// OnItem runs in the step's own scope each time an item's run ends
	// (see ProgressVars), inside the transition that records the end; it
	// holds only steps that finish at once (set, setStatus, switch, fail).
	OnItem      []Step
	OnItemBlock BlockID
}

// ParallelStep runs its branches at once and goes on when all have ended.
// Each branch has its own variables; Result receives, in branch order, one
// object per branch with the variables it set. A branch's unhandled error
// cancels the others and is the step's error.
type ParallelStep struct {
	StepBase
	Branches []Branch
	Result   string
	// OnBranch is the OnItem of a parallel step: it runs each time a
	// branch ends, with IndexVar the branch's 0-based number.
	OnBranch      []Step
	OnBranchBlock BlockID
}

// The variables of a forEach body and of onItem/onBranch lists.
const (
	// IndexVar is the 0-based position of the item in a forEach body and
	// in onItem, of the branch that ended in onBranch.
	IndexVar = "index"
	// DoneVar counts the items or branches that have ended, this one
	// included (1 for the first); TotalVar is how many there are.
	DoneVar  = "done"
	TotalVar = "total"
	// ResultVar is the object of the variables the ended run set: the
	// element the step's result list holds for it.
	ResultVar = "result"
)

// ProgressVars are the names an onItem or onBranch list sees besides the
// step's scope (and, for onItem, the item under the forEach's `as`).
var ProgressVars = []string{DoneVar, TotalVar, IndexVar, ResultVar}

// Progress returns the onItem list of a forEach or the onBranch list of a
// parallel step, and its block; none for other steps.
func Progress(s Step) ([]Step, BlockID) {
	switch s := s.(type) {
	case *ForEachStep:
		return s.OnItem, s.OnItemBlock
	case *ParallelStep:
		return s.OnBranch, s.OnBranchBlock
	}
	return nil, ""
}

// Branch is one list of steps of a parallel step.
type Branch struct {
	Pos   Pos
	Steps []Step
	Block BlockID
}

// ContinueAsNewStep restarts the instance with a new input and no
// variables, keeping its id, buffered events and custom status.
type ContinueAsNewStep struct {
	StepBase
	Input *Value // nil = null
	// SameVersion keeps the next run on this run's definition (version:
	// same); by default it starts on the latest deployed version.
	SameVersion bool
}

// CallStep runs another workflow as a child instance and waits for it.
type CallStep struct {
	StepBase
	Workflow string
	Input    *Value // nil = null
	Result   string // receives the child's output
}

var (
	_ Step = (*ActivityStep)(nil)
	_ Step = (*WaitStep)(nil)
	_ Step = (*SetStatusStep)(nil)
	_ Step = (*SetStep)(nil)
	_ Step = (*SwitchStep)(nil)
	_ Step = (*ReturnStep)(nil)
	_ Step = (*FailStep)(nil)
	_ Step = (*WhileStep)(nil)
	_ Step = (*TryStep)(nil)
	_ Step = (*ForEachStep)(nil)
	_ Step = (*ParallelStep)(nil)
	_ Step = (*ContinueAsNewStep)(nil)
	_ Step = (*CallStep)(nil)
)

// Limits of the flow steps.
const (
	MaxWhile       = 100_000 // the largest `max` of a while
	MaxConcurrency = 1_000   // the largest maxConcurrency, and of branches started at once
	MaxBranches    = 100     // branches of one parallel step
)

// IsHandler reports whether block is the error handler of its owner (an
// onError list or a catch): errors raised inside it go past the owner.
func IsHandler(owner Step, block BlockID) bool {
	if owner == nil {
		return false
	}
	if b := owner.Base(); b.OnError != nil && b.OnErrorBlock == block {
		return true
	}
	if t, ok := owner.(*TryStep); ok && t.Catch.Block == block {
		return true
	}
	return false
}

// Env is what expressions see at run time.
type Env struct {
	Input    any
	Vars     map[string]any
	Instance InstanceInfo
	Now      time.Time // when the current step began; now() returns it
	// Schedule is set, alone, for a schedule's input (see Schedule.EvalInput).
	Schedule *ScheduleInfo
}

// InstanceInfo is the `instance` object of the expression environment.
type InstanceInfo struct {
	ID          string    `expr:"id" json:"id"`
	Name        string    `expr:"name" json:"name"`
	CreatedTime time.Time `expr:"createdTime" json:"createdTime"`
}
