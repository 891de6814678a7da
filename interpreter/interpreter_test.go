package interpreter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// harness drives one instance through the pure step function, the way the
// engine does, and applies the commands itself.
type harness struct {
	t      *testing.T
	in     *Interpreter
	def    *dsl.Workflow
	st     *State
	now    time.Time
	tasks  []*ScheduleTask
	timers map[string]time.Time // live timers
	hist   []HistoryEvent
	after  []Command // StartChild and TerminateChild, for the engine
}

// loadFlow parses testdata/flows/<name>.yaml, the workflow of that name.
func loadFlow(t *testing.T, name string) *dsl.Workflow {
	t.Helper()
	file := filepath.Join("testdata", "flows", name+".yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	def, err := dsl.Parse(file, src)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if def.Name != name {
		t.Fatalf("%s holds workflow %s", file, def.Name)
	}
	return def
}

// newHarness starts an instance of the workflow name (see loadFlow).
func newHarness(t *testing.T, name string, input any) *harness {
	t.Helper()
	def := loadFlow(t, name)
	raw, _ := json.Marshal(input)
	ni := Instantiate(def, "i1", raw, t0)
	h := &harness{t: t, in: New(Options{}), def: def, st: ni.State, now: t0, timers: map[string]time.Time{}}
	h.send(ni.Start)
	return h
}

// send applies ev and returns whether it changed anything.
func (h *harness) send(ev Event) bool {
	h.t.Helper()
	if ev.Time.IsZero() {
		ev.Time = h.now
	}
	tr, err := h.in.Step(h.def, h.st, ev)
	if err != nil {
		h.t.Fatalf("step %s: %v", ev.Kind, err)
	}
	if tr == nil {
		return false
	}
	if tr.FromRevision != h.st.Revision || tr.State.Revision != h.st.Revision+1 {
		h.t.Fatalf("revision %d → %d from %d", tr.FromRevision, tr.State.Revision, h.st.Revision)
	}
	for _, c := range tr.Commands {
		switch c := c.(type) {
		case *ScheduleTask:
			h.tasks = append(h.tasks, c)
		case *StartTimer:
			h.timers[c.ID] = c.Due
		case *CancelTimer:
			delete(h.timers, c.ID)
		case *StartChild, *TerminateChild:
			h.after = append(h.after, c)
		}
	}
	h.hist = append(h.hist, tr.History...)
	h.st = tr.State
	return true
}

func (h *harness) lastTask() *ScheduleTask {
	h.t.Helper()
	if len(h.tasks) == 0 {
		h.t.Fatal("no task scheduled")
	}
	return h.tasks[len(h.tasks)-1]
}

func (h *harness) complete(result any) {
	h.t.Helper()
	raw, _ := json.Marshal(result)
	if !h.send(Event{Kind: EvCompleted, TaskID: h.lastTask().TaskID, Data: raw}) {
		h.t.Fatal("completion was ignored")
	}
}

func (h *harness) raise(name string, data any) bool {
	raw, _ := json.Marshal(data)
	return h.send(Event{Kind: EvRaised, Name: name, Data: raw})
}

// fireAll advances the clock to the earliest live timer and fires it.
func (h *harness) fireNext() {
	h.t.Helper()
	var id string
	var due time.Time
	for k, d := range h.timers {
		if id == "" || d.Before(due) {
			id, due = k, d
		}
	}
	if id == "" {
		h.t.Fatal("no live timer")
	}
	delete(h.timers, id)
	h.now = due
	h.send(Event{Kind: EvTimer, Timer: id})
}

func (h *harness) wantStatus(s RuntimeStatus) {
	h.t.Helper()
	if h.st.Status != s {
		h.t.Fatalf("status %s, want %s (output %s)", h.st.Status, s, h.st.Output)
	}
}

func (h *harness) wantJSON(what string, got json.RawMessage, want string) {
	h.t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil && len(got) > 0 {
		h.t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		h.t.Fatalf("bad want %s: %v", want, err)
	}
	ga, _ := json.Marshal(a)
	gb, _ := json.Marshal(b)
	if string(ga) != string(gb) {
		h.t.Fatalf("%s = %s, want %s", what, ga, gb)
	}
}

const reserveTicket = "ReserveTicket"

func TestReserveTicketConfirmed(t *testing.T) {
	h := newHarness(t, reserveTicket, "user1")
	h.wantStatus(StatusRunning)
	task := h.lastTask()
	if task.Activity != "CalculateDiscount" || task.Queue != LocalQueue || string(task.Input) != `"user1"` || task.Attempt != 1 {
		t.Fatalf("task %+v", task)
	}
	if h.st.CustomStatus != nil {
		t.Fatalf("custom status before it is set: %s", h.st.CustomStatus)
	}
	h.complete(20)
	h.wantJSON("custom status", h.st.CustomStatus, `{"discount":20,"discountTimeout":60,"bookingUrl":""}`)
	if p := h.st.Pending; p == nil || p.Kind != WaitEvent || p.Event != "BookingConfirmed" || p.Deadline == nil || !p.Deadline.Equal(t0.Add(60*time.Second)) {
		t.Fatalf("pending %+v", h.st.Pending)
	}
	if len(h.timers) != 1 {
		t.Fatalf("timers %v", h.timers)
	}
	h.raise("BookingConfirmed", true)
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `true`)
	h.wantJSON("custom status", h.st.CustomStatus, `{"message":"Thank you for confirming your booking."}`)
	if len(h.timers) != 0 {
		t.Fatalf("the timeout timer was not cancelled: %v", h.timers)
	}
	// The timer that lost the race fires anyway: ignored cleanly.
	if h.send(Event{Kind: EvTimer, Timer: "w2"}) {
		t.Fatal("a late timer changed a completed instance")
	}
	if h.raise("BookingConfirmed", true) {
		t.Fatal("an event changed a completed instance")
	}
}

func TestReserveTicketTimeout(t *testing.T) {
	h := newHarness(t, reserveTicket, "user1")
	h.complete(15)
	h.fireNext()
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `false`)
	h.wantJSON("custom status", h.st.CustomStatus, `{"message":"The booking was not confirmed on time. Please try again."}`)
	// The event that came late is refused by the store (finished); if it
	// slips through it changes nothing.
	if h.raise("BookingConfirmed", true) {
		t.Fatal("late event applied")
	}
}

func TestEventBufferedBeforeWait(t *testing.T) {
	h := newHarness(t, reserveTicket, "user1")
	if !h.raise("BookingConfirmed", true) {
		t.Fatal("event not buffered")
	}
	if len(h.st.Buffered) != 1 {
		t.Fatalf("buffered %v", h.st.Buffered)
	}
	h.complete(10)
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `true`)
	if len(h.st.Buffered) != 0 || len(h.timers) != 0 {
		t.Fatalf("buffered %v timers %v", h.st.Buffered, h.timers)
	}
}

func TestEventsOfOneNameFeedWaitsInOrder(t *testing.T) {
	h := newHarness(t, "TwoWaits", nil)
	h.raise("E", "first")
	h.raise("E", "second")
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `["first","second"]`)

	h = newHarness(t, "TwoWaitsBuffered", nil)
	h.raise("E", 1)
	h.raise("F", "other")
	h.raise("E", 2)
	h.fireNext()
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `[1,2]`)
	if len(h.st.Buffered) != 1 || h.st.Buffered[0].Name != "F" {
		t.Fatalf("buffered %v", h.st.Buffered)
	}
}

func TestSuspendHoldsEventsUntilResume(t *testing.T) {
	h := newHarness(t, reserveTicket, "u")
	h.complete(5)
	h.send(Event{Kind: EvSuspend, Reason: "maintenance"})
	h.wantStatus(StatusSuspended)
	h.raise("BookingConfirmed", true)
	h.wantStatus(StatusSuspended)
	if len(h.st.Held) != 1 {
		t.Fatalf("held %v", h.st.Held)
	}
	if h.send(Event{Kind: EvSuspend}) {
		t.Fatal("second suspend changed state")
	}
	h.send(Event{Kind: EvResume})
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `true`)
}

func TestSuspendBeforeStart(t *testing.T) {
	def := loadFlow(t, reserveTicket)
	in := New(Options{})
	ni := Instantiate(def, "x", []byte(`"u"`), t0)
	tr, _ := in.Step(def, ni.State, Event{Kind: EvSuspend, Time: t0})
	tr, _ = in.Step(def, tr.State, Event{Kind: EvStart, Time: t0})
	if tr.State.Status != StatusSuspended || len(tr.State.Held) != 1 {
		t.Fatalf("status %s held %v", tr.State.Status, tr.State.Held)
	}
	tr, _ = in.Step(def, tr.State, Event{Kind: EvResume, Time: t0})
	if tr.State.Status != StatusRunning || tr.State.Pending == nil || tr.State.Pending.Kind != WaitActivity {
		t.Fatalf("after resume: %s %+v", tr.State.Status, tr.State.Pending)
	}
}

func TestTerminateCancelsTimer(t *testing.T) {
	h := newHarness(t, reserveTicket, "u")
	h.complete(5)
	h.send(Event{Kind: EvTerminate, Reason: "user asked"})
	h.wantStatus(StatusTerminated)
	h.wantJSON("output", h.st.Output, `"user asked"`)
	if len(h.timers) != 0 {
		t.Fatalf("timers left: %v", h.timers)
	}
	if h.send(Event{Kind: EvResume}) || h.send(Event{Kind: EvTerminate}) {
		t.Fatal("a terminated instance changed")
	}
}

const retrying = "Retrying"

func TestRetryThenOnError(t *testing.T) {
	h := newHarness(t, retrying, nil)
	if q := h.lastTask().Queue; q != "Flaky" {
		t.Fatalf("queue %q, want the activity name for an external worker", q)
	}
	wantDelays := []time.Duration{time.Second, 2 * time.Second}
	for attempt := 1; attempt <= 3; attempt++ {
		task := h.lastTask()
		if task.Attempt != attempt {
			t.Fatalf("attempt %d, want %d", task.Attempt, attempt)
		}
		start := h.now
		h.send(Event{Kind: EvFailed, TaskID: task.TaskID, Error: &ErrorInfo{Type: "Boom", Message: "no luck", Retryable: true}})
		if attempt < 3 {
			if p := h.st.Pending; p.Kind != WaitRetry || !p.Deadline.Equal(start.Add(wantDelays[attempt-1])) {
				t.Fatalf("attempt %d: pending %+v", attempt, p)
			}
			h.fireNext()
		}
	}
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `"handled"`)
	h.wantJSON("custom status", h.st.CustomStatus, `{"type":"Boom","message":"no luck","attempt":3,"step":"call"}`)
}

func TestNonRetryableFailureFailsInstance(t *testing.T) {
	h := newHarness(t, "FailsForGood", nil)
	h.send(Event{Kind: EvFailed, TaskID: h.lastTask().TaskID, Error: &ErrorInfo{Type: "BadInput", Message: "nope"}})
	h.wantStatus(StatusFailed)
	if !strings.Contains(string(h.st.Output), "nope") || !strings.Contains(string(h.st.Output), "BadInput") {
		t.Fatalf("output %s", h.st.Output)
	}
}

func TestActivityTimeoutRetries(t *testing.T) {
	h := newHarness(t, "SlowActivity", nil)
	first := h.lastTask()
	h.fireNext() // start-to-close timeout
	if p := h.st.Pending; p == nil || p.Kind != WaitRetry {
		t.Fatalf("pending %+v", p)
	}
	h.fireNext() // retry delay
	second := h.lastTask()
	if second.TaskID == first.TaskID || second.Attempt != 2 {
		t.Fatalf("second task %+v", second)
	}
	// The first attempt finishing late is ignored.
	if h.send(Event{Kind: EvCompleted, TaskID: first.TaskID, Data: []byte(`1`)}) {
		t.Fatal("late completion of a timed-out attempt applied")
	}
	h.complete(2)
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `2`)
	if h.send(Event{Kind: EvCompleted, TaskID: second.TaskID, Data: []byte(`3`)}) {
		t.Fatal("duplicate completion applied")
	}
}

func TestOversizeStatusFailsNamingStepAndSize(t *testing.T) {
	h := newHarness(t, "Big", nil)
	h.wantStatus(StatusFailed)
	out := string(h.st.Output)
	if !strings.Contains(out, "big") || !strings.Contains(out, "18004") || !strings.Contains(out, "16384") {
		t.Fatalf("output %s", out)
	}
}

func TestStatusAtTheLimitPasses(t *testing.T) {
	// 8190 x's + 2 quotes = 8192 UTF-16 code units = 16384 bytes.
	h := newHarness(t, "StatusEdge", nil)
	h.wantStatus(StatusCompleted)
}

func TestDeterministicAcrossRedelivery(t *testing.T) {
	def := loadFlow(t, "Clock")
	in := New(Options{})
	ni := Instantiate(def, "c", nil, t0)
	a, _ := in.Step(def, ni.State, ni.Start)
	b, _ := in.Step(def, ni.State, ni.Start)
	if string(a.State.Output) != string(b.State.Output) {
		t.Fatalf("%s != %s", a.State.Output, b.State.Output)
	}
	if ni.State.Status != StatusPending || ni.State.Revision != 0 {
		t.Fatal("Step modified its input state")
	}
}

func TestExpressionErrorFailsInstance(t *testing.T) {
	h := newHarness(t, "Div", map[string]any{})
	h.wantStatus(StatusFailed)
	if !strings.Contains(string(h.st.Output), "pick") {
		t.Fatalf("output %s", h.st.Output)
	}
}

func TestHistoryRecordsEachTransition(t *testing.T) {
	h := newHarness(t, reserveTicket, "u")
	h.complete(5)
	h.raise("BookingConfirmed", false)
	var types []string
	for _, e := range h.hist {
		types = append(types, e.Type)
	}
	want := "ExecutionStarted TaskScheduled TaskCompleted CustomStatusUpdated TimerCreated EventRaised CustomStatusUpdated ExecutionCompleted"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("history\n got %s\nwant %s", got, want)
	}
}

func TestStatusSizeIgnoresHTMLEscaping(t *testing.T) {
	// "<" is one UTF-16 unit in the status's JSON text, as Durable Functions
	// counts it, even though Go's encoder would write it as \u003c.
	h := newHarness(t, "Angles", nil)
	h.wantStatus(StatusCompleted)
}

func (h *harness) wantErrorType(typ string) {
	h.t.Helper()
	h.wantStatus(StatusFailed)
	var info ErrorInfo
	if err := json.Unmarshal(h.st.Output, &info); err != nil || info.Type != typ {
		h.t.Fatalf("failed with %s, want type %s", h.st.Output, typ)
	}
}

func TestMessagesApplyInAcceptedOrder(t *testing.T) {
	h := newHarness(t, "TwoWaitsOrdered", nil)
	// Message 2 reaches the engine first (message 1 was held by an engine
	// that died): it waits for message 1.
	if !h.send(Event{Kind: EvRaised, Name: "E", Data: []byte(`"second"`), Seq: 2}) {
		t.Fatal("early message not kept")
	}
	h.wantStatus(StatusRunning)
	if len(h.st.Early) != 1 {
		t.Fatalf("early %v", h.st.Early)
	}
	// A redelivery of message 2 changes nothing.
	if h.send(Event{Kind: EvRaised, Name: "E", Data: []byte(`"second"`), Seq: 2}) {
		t.Fatal("duplicate early message applied")
	}
	h.send(Event{Kind: EvRaised, Name: "E", Data: []byte(`"first"`), Seq: 1})
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `["first","second"]`)
	if h.st.MsgSeq != 2 || h.st.Early != nil {
		t.Fatalf("seq %d early %v", h.st.MsgSeq, h.st.Early)
	}
}

func TestRedeliveredMessageIsIgnored(t *testing.T) {
	h := newHarness(t, reserveTicket, "u")
	h.send(Event{Kind: EvSuspend, Seq: 1})
	h.wantStatus(StatusSuspended)
	h.send(Event{Kind: EvResume, Seq: 2})
	h.wantStatus(StatusRunning)
	if h.send(Event{Kind: EvSuspend, Seq: 1}) {
		t.Fatal("a redelivered suspend applied again")
	}
	h.wantStatus(StatusRunning)
}
