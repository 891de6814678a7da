package interpreter

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tests of the flow steps: while, try/catch, onError on any step, typed
// fail, the workflow's timeout, wait any/all, forEach, parallel and
// continueAsNew. Each drives the pure step function with a fake clock.

func TestWhileLoopsUntilItsCondition(t *testing.T) {
	h := newHarness(t, "Count", nil)
	for n := 0; n < 3; n++ {
		if got := string(h.lastTask().Input); got != strconv.Itoa(n) {
			t.Fatalf("iteration %d: input %s", n, got)
		}
		h.complete(n * 10)
	}
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `[0,10,20]`)
}

func TestWhileMaxIsLoopLimitExceeded(t *testing.T) {
	h := newHarness(t, "Spin", nil)
	h.wantStatus(StatusFailed)
	h.wantErrorType(ErrTypeLoopLimit)
	if !strings.Contains(string(h.st.Output), `"step":"loop"`) {
		t.Fatalf("output %s", h.st.Output)
	}
}

func TestWhileIfIsCheckedOnceAndConditionSeesTheBody(t *testing.T) {
	h := newHarness(t, "IfOnce", nil)
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `4`)
}

func TestLongLoopYieldsBetweenTransitions(t *testing.T) {
	h := newHarness(t, "Long", nil)
	yields := 0
	for h.st.Status == StatusRunning {
		if p := h.st.Pending; p == nil || p.Kind != WaitYield {
			t.Fatalf("pending %+v", p)
		}
		yields++
		h.fireNext()
	}
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `25000`)
	if yields < 4 || yields > 6 {
		t.Fatalf("%d yields for 50000 steps, want about 5", yields)
	}
}

func TestTryCatchesAndGoesOn(t *testing.T) {
	h := newHarness(t, "Try", "X1")
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"a":1,"caught":{"type":"OutOfStock","message":"no X1","step":"boom","data":{"sku":"X1"}}}`)
	if _, ok := h.st.Vars["e"]; ok {
		t.Fatal("the catch's variable outlived the catch")
	}
}

func TestCatchSelectsByTypeAndRethrows(t *testing.T) {
	name := "Typed"
	for in, want := range map[string]string{"A": `"inner"`, "B": `"outer"`} {
		h := newHarness(t, name, in)
		h.wantStatus(StatusCompleted)
		h.wantJSON("output", h.st.Output, want)
	}
	h := newHarness(t, name, "C")
	h.wantErrorType("Rethrown")
	h = newHarness(t, name, "D")
	h.wantErrorType("D")
}

func TestCatchRestoresAShadowedVariable(t *testing.T) {
	h := newHarness(t, "Shadow", nil)
	h.wantJSON("output", h.st.Output, `["outer","X"]`)
}

func TestOnErrorOnAnyStepKind(t *testing.T) {
	h := newHarness(t, "OnError", map[string]any{})
	h.wantStatus(StatusRunning)
	h.fireNext()
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `["fallback","ExpressionError","TimeoutError"]`)
	if _, ok := h.st.Vars["error"]; ok {
		t.Fatal("error outlived its onError")
	}
}

func TestErrorInCatchGoesPastTheTry(t *testing.T) {
	h := newHarness(t, "Past", nil)
	h.wantJSON("output", h.st.Output, `"Second"`)
}

func TestActivityErrorCaughtAroundALoop(t *testing.T) {
	h := newHarness(t, "LoopTry", nil)
	h.complete(1)
	h.send(Event{Kind: EvFailed, TaskID: h.lastTask().TaskID, Error: &ErrorInfo{Type: "Down", Message: "gone"}})
	h.wantJSON("output", h.st.Output, `{"i":2,"error":{"type":"Down","message":"gone","step":"steps[1].steps[0].steps[1]","attempt":1}}`)
}

func TestTypedFailIsTheOutput(t *testing.T) {
	h := newHarness(t, "Fails", 9)
	h.wantStatus(StatusFailed)
	h.wantJSON("output", h.st.Output, `{"type":"InvalidChoice","message":"choice 9","step":"stop","data":{"choice":9}}`)
}

func TestWorkflowTimeout(t *testing.T) {
	name := "Slow"
	h := newHarness(t, name, nil)
	if h.st.Timeout == nil || !h.st.Timeout.Due.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("timeout %+v", h.st.Timeout)
	}
	h.fireNext()
	h.wantStatus(StatusFailed)
	h.wantErrorType(ErrTypeTimeout)
	if len(h.timers) != 0 {
		t.Fatalf("timers left: %v", h.timers)
	}

	// Finishing in time cancels the timeout's timer.
	h = newHarness(t, name, nil)
	h.raise("Never", 1)
	h.wantStatus(StatusCompleted)
	if len(h.timers) != 0 || h.st.Timeout != nil {
		t.Fatalf("timers left: %v %+v", h.timers, h.st.Timeout)
	}
}

func TestWaitAnyTakesTheFirstAndSaysWhich(t *testing.T) {
	name := "Any"
	h := newHarness(t, name, nil)
	if p := h.st.Pending; p == nil || p.Kind != WaitEvent || len(p.Events) != 2 || p.Deadline == nil {
		t.Fatalf("pending %+v", p)
	}
	h.raise("Other", 1)
	h.raise("Rejected", "too dear")
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"event":"Rejected","data":"too dear"}`)
	if len(h.timers) != 0 || len(h.st.Buffered) != 1 {
		t.Fatalf("timers %v buffered %v", h.timers, h.st.Buffered)
	}

	// Buffered events: the earliest of the names wins, the rest stay.
	h = newHarness(t, "AnyBuffered", nil)
	h.raise("B", 2)
	h.raise("A", 1)
	h.fireNext()
	h.wantJSON("output", h.st.Output, `{"event":"B","data":2}`)
	if len(h.st.Buffered) != 1 || h.st.Buffered[0].Name != "A" {
		t.Fatalf("buffered %v", h.st.Buffered)
	}
}

func TestWaitAnyTimesOut(t *testing.T) {
	h := newHarness(t, "AnyTimeout", nil)
	h.fireNext()
	h.wantErrorType(ErrTypeTimeout)
	if !strings.Contains(string(h.st.Output), `none of the events \"A\", \"B\" arrived`) {
		t.Fatalf("output %s", h.st.Output)
	}
}

func TestWaitAllCollectsEveryEvent(t *testing.T) {
	name := "All"
	h := newHarness(t, name, nil)
	h.raise("Paid", 10)
	h.wantStatus(StatusRunning)
	if p := h.st.Pending; len(p.Events) != 1 || p.Events[0] != "Signed" || len(p.Got) != 1 || p.Got[0] != "Paid" {
		t.Fatalf("pending %+v", p)
	}
	h.raise("Paid", 11) // a second Paid is not wanted any more: buffered
	h.raise("Signed", "ada")
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"Paid":10,"Signed":"ada"}`)
	if len(h.st.Buffered) != 1 || len(h.timers) != 0 {
		t.Fatalf("buffered %v timers %v", h.st.Buffered, h.timers)
	}

	h = newHarness(t, name, nil)
	h.raise("Signed", true)
	h.fireNext()
	h.wantJSON("output", h.st.Output, `{"partial":{"Signed":true}}`)

	// Both buffered before the wait: it goes straight on.
	h = newHarness(t, "AllBuffered", nil)
	h.raise("B", 2)
	h.raise("A", 1)
	h.fireNext()
	h.wantJSON("output", h.st.Output, `{"A":1,"B":2}`)
}

// taskFor returns the live task whose input is in.
func (h *harness) taskFor(in string) *ScheduleTask {
	h.t.Helper()
	for i := len(h.tasks) - 1; i >= 0; i-- {
		if string(h.tasks[i].Input) == in {
			return h.tasks[i]
		}
	}
	h.t.Fatalf("no task with input %s", in)
	return nil
}

func (h *harness) completeTask(tk *ScheduleTask, result any) {
	h.t.Helper()
	raw, _ := json.Marshal(result)
	if !h.send(Event{Kind: EvCompleted, TaskID: tk.TaskID, Data: raw}) {
		h.t.Fatalf("completion of %s was ignored", tk.TaskID)
	}
}

func TestParallelJoinsInOrder(t *testing.T) {
	h := newHarness(t, "Par", nil)
	if p := h.st.Pending; p == nil || p.Kind != WaitBranches || p.StepID != "fan" || p.Branches != 3 || p.Done != 1 {
		t.Fatalf("pending %+v", p)
	}
	if len(h.st.Threads) != 2 || h.st.Threads[0].ID != "fan/0" || h.st.Threads[1].ID != "fan/1" {
		t.Fatalf("threads %+v", h.st.Threads)
	}
	h.completeTask(h.taskFor(`"b"`), 2)
	h.completeTask(h.taskFor(`"a"`), 1)
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"r":[{"x":1,"shared":"branch0"},{"y":2},{"z":"eu"}],"shared":"parent"}`)
	if len(h.st.Threads) != 0 || len(h.st.Joins) != 0 {
		t.Fatalf("threads %v joins %v left", h.st.Threads, h.st.Joins)
	}
}

func TestFailingBranchCancelsTheOthers(t *testing.T) {
	h := newHarness(t, "ParFail", nil)
	if len(h.timers) != 1 {
		t.Fatalf("timers %v", h.timers)
	}
	slow := h.taskFor(`"slow"`)
	h.completeTask(h.taskFor(`"check"`), true)
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"type":"Rejected","message":"no","step":"fan.branch[2][1]"}`)
	if len(h.timers) != 0 {
		t.Fatalf("the cancelled branch's timer is still live: %v", h.timers)
	}
	if h.send(Event{Kind: EvCompleted, TaskID: slow.TaskID, Data: []byte(`1`)}) {
		t.Fatal("a cancelled branch's activity completion was applied")
	}
}

func TestBranchHandlesItsOwnError(t *testing.T) {
	h := newHarness(t, "ParTry", nil)
	h.send(Event{Kind: EvFailed, TaskID: h.taskFor(`1`).TaskID, Error: &ErrorInfo{Type: "Down"}})
	h.wantStatus(StatusRunning)
	h.completeTask(h.taskFor(`2`), "ok")
	h.wantJSON("output", h.st.Output, `[{"v":"fallback"},{"w":"ok"}]`)
}

func TestUnhandledBranchErrorFailsTheInstance(t *testing.T) {
	h := newHarness(t, "ParUnhandled", nil)
	h.send(Event{Kind: EvFailed, TaskID: h.lastTask().TaskID, Error: &ErrorInfo{Type: "Boom", Message: "bad"}})
	h.wantErrorType("Boom")
	if len(h.st.Threads) != 0 {
		t.Fatalf("threads left %v", h.st.Threads)
	}
}

func TestForEachSequentialInOrder(t *testing.T) {
	h := newHarness(t, "Seq", []int{1, 2, 3})
	for i, in := range []string{"10", "20", "30"} {
		if len(h.st.Threads) != 1 || h.st.Threads[0].ID != "steps[1]/"+strconv.Itoa(i) {
			t.Fatalf("item %d: threads %+v", i, h.st.Threads)
		}
		tk := h.lastTask()
		if string(tk.Input) != in {
			t.Fatalf("item %d: input %s", i, tk.Input)
		}
		h.completeTask(tk, i)
	}
	h.wantJSON("output", h.st.Output, `[0,1,2]`)
	if _, ok := h.st.Vars["n"]; ok {
		t.Fatal("the item variable leaked out of the forEach")
	}
}

func TestForEachParallelRespectsMaxConcurrency(t *testing.T) {
	h := newHarness(t, "Fan", nil)
	live := map[string]*ScheduleTask{}
	for _, tk := range h.tasks {
		live[string(tk.Input)] = tk
	}
	if len(live) != 3 {
		t.Fatalf("%d tasks at once, want 3", len(live))
	}
	// Finish them in reverse order of start, always keeping 3 in flight.
	done := 0
	for len(live) > 0 {
		var last *ScheduleTask
		for _, tk := range live {
			if last == nil || tk.TaskID > last.TaskID {
				last = tk
			}
		}
		delete(live, string(last.Input))
		before := len(h.tasks)
		h.completeTask(last, string(last.Input))
		done++
		for _, tk := range h.tasks[before:] {
			live[string(tk.Input)] = tk
		}
		if want := min(3, 10-done); len(live) != want && h.st.Status == StatusRunning {
			t.Fatalf("after %d done: %d in flight, want %d", done, len(live), want)
		}
	}
	h.wantJSON("output", h.st.Output, `["1","2","3","4","5","6","7","8","9","10"]`)
}

func TestForEachEdgeCases(t *testing.T) {
	name := "Edge"
	h := newHarness(t, name, []int{})
	h.wantJSON("output", h.st.Output, `[]`)
	h = newHarness(t, name, []int{4, 5})
	h.wantJSON("output", h.st.Output, `[{"double":8},{"double":10}]`)
	h = newHarness(t, name, "not a list")
	h.wantErrorType(ErrTypeItems)
}

func TestEventsReachBranchWaits(t *testing.T) {
	h := newHarness(t, "ParEvents", nil)
	h.raise("Go", 1)
	h.wantStatus(StatusRunning)
	h.raise("Go", 2)
	h.wantJSON("output", h.st.Output, `[{"got":1},{"got":2}]`)
}

func TestNestedBranches(t *testing.T) {
	h := newHarness(t, "Nested", nil)
	ids := map[string]bool{}
	for _, th := range h.st.Threads {
		ids[th.ID] = true
	}
	for _, id := range []string{"steps[0]/0", "steps[0]/1", "steps[0]/0/steps[0].steps[0]/0", "steps[0]/0/steps[0].steps[0]/1", "steps[0]/1/steps[0].steps[0]/0"} {
		if !ids[id] {
			t.Fatalf("no thread %s in %v", id, ids)
		}
	}
	for _, in := range []string{"3", "1", "2"} {
		n := in[0] - '0'
		h.completeTask(h.taskFor(in), int(n*n))
	}
	h.wantJSON("output", h.st.Output, `[5,9]`)
}

func TestTerminateStopsEveryBranch(t *testing.T) {
	h := newHarness(t, "ParTerm", nil)
	if len(h.timers) != 2 {
		t.Fatalf("timers %v", h.timers)
	}
	h.send(Event{Kind: EvTerminate, Reason: "stop"})
	h.wantStatus(StatusTerminated)
	if len(h.timers) != 0 || len(h.st.Threads) != 0 || len(h.st.Joins) != 0 {
		t.Fatalf("timers %v threads %v joins %v", h.timers, h.st.Threads, h.st.Joins)
	}
}

func TestBranchesAreDeterministic(t *testing.T) {
	name := "Det"
	a := newHarness(t, name, nil)
	b := newHarness(t, name, nil)
	for a.st.Status == StatusRunning {
		tk := a.tasks[0]
		a.tasks = a.tasks[1:]
		a.completeTask(tk, 1)
		b.completeTask(b.tasks[0], 1)
		b.tasks = b.tasks[1:]
		ja, _ := json.Marshal(a.st)
		jb, _ := json.Marshal(b.st)
		if string(ja) != string(jb) {
			t.Fatalf("states differ:\n%s\n%s", ja, jb)
		}
	}
	a.wantStatus(StatusCompleted)
}

func TestContinueAsNewRestartsKeepingEventsAndStatus(t *testing.T) {
	h := newHarness(t, "Gen", 0)
	h.wantJSON("custom status", h.st.CustomStatus, `{"first":true}`)
	firstTimeout := h.st.Timeout.ID
	h.now = h.now.Add(30 * time.Minute)
	h.raise("Tick", "a")
	if h.st.Generation != 1 || string(h.st.Input) != "1" {
		t.Fatalf("generation %d input %s", h.st.Generation, h.st.Input)
	}
	if _, ok := h.st.Vars["tick"]; ok {
		t.Fatalf("variables survived the restart: %v", h.st.Vars)
	}
	if string(h.st.Vars["seen"]) != "1" {
		t.Fatalf("vars %v", h.st.Vars)
	}
	h.wantJSON("custom status", h.st.CustomStatus, `{"first":true}`)
	// The timeout restarts with the run.
	if h.st.Timeout == nil || h.st.Timeout.ID == firstTimeout || !h.st.Timeout.Due.Equal(h.now.Add(time.Hour)) {
		t.Fatalf("timeout %+v", h.st.Timeout)
	}
	if len(h.timers) != 1 {
		t.Fatalf("timers %v", h.timers)
	}
	// Events buffered before a restart are there for the next run.
	h.send(Event{Kind: EvSuspend})
	h.raise("Tick", "b")
	h.raise("Tick", "c")
	h.send(Event{Kind: EvResume})
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"input":2,"tick":"c"}`)
	if h.st.Generation != 2 || len(h.timers) != 0 {
		t.Fatalf("generation %d timers %v", h.st.Generation, h.timers)
	}
	var restarts int
	for _, e := range h.hist {
		if e.Type == "ContinuedAsNew" {
			restarts++
		}
	}
	if restarts != 2 {
		t.Fatalf("%d ContinuedAsNew lines", restarts)
	}
}

func TestContinueAsNewLoopThatNeverBlocksYields(t *testing.T) {
	h := newHarness(t, "SpinAsNew", 0)
	yields := 0
	for h.st.Status == StatusRunning {
		yields++
		h.fireNext()
	}
	h.wantJSON("output", h.st.Output, `20000`)
	if h.st.Generation != 20000 || yields < 3 {
		t.Fatalf("generation %d after %d yields", h.st.Generation, yields)
	}
}

func TestHistoryOfOneTransitionIsBounded(t *testing.T) {
	h := newHarness(t, "Chatty", nil)
	h.wantStatus(StatusCompleted)
	if len(h.hist) != maxHistoryLines+1 || h.hist[maxHistoryLines/2].Type != "HistoryTruncated" {
		t.Fatalf("%d history lines", len(h.hist))
	}
	if last := h.hist[len(h.hist)-1]; last.Type != "ExecutionCompleted" {
		t.Fatalf("last line %+v", last)
	}
}

func (h *harness) childEnds(id InstanceID, status RuntimeStatus, output any) bool {
	raw, _ := json.Marshal(output)
	data, _ := json.Marshal(ChildResult{Child: id, Status: status, Output: raw})
	return h.send(Event{Kind: EvRaised, Name: ChildEvent, Data: data})
}

const caller = "Caller"

func TestCallStartsAChildAndTakesItsOutput(t *testing.T) {
	h := newHarness(t, caller, "A-1")
	p := h.st.Pending
	if p == nil || p.Kind != WaitChild || p.Child != "i1:1" || p.Deadline == nil || !p.Deadline.Equal(t0.Add(childCheck)) {
		t.Fatalf("pending %+v", p)
	}
	sc, ok := h.after[0].(*StartChild)
	if len(h.after) != 1 || !ok || sc.ID != "i1:1" || sc.Parent != "i1" || sc.Workflow != "Ship" || string(sc.Input) != `{"order":"A-1"}` {
		t.Fatalf("commands %+v", h.after)
	}
	// No news: the check asks again, later each time.
	h.fireNext()
	h.fireNext()
	if len(h.after) != 3 || h.st.Pending.Attempt != 3 || !h.st.Pending.Deadline.Equal(t0.Add(childCheck+2*childCheck+4*childCheck)) {
		t.Fatalf("after two checks: %d commands, pending %+v", len(h.after), h.st.Pending)
	}
	if h.childEnds("i1:99", StatusCompleted, 1) {
		t.Fatal("the end of another child was applied")
	}
	if !h.childEnds("i1:1", StatusCompleted, map[string]any{"tracking": "Z9"}) {
		t.Fatal("the child's end was ignored")
	}
	h.wantJSON("output", h.st.Output, `{"tracking":"Z9"}`)
	if len(h.timers) != 0 {
		t.Fatalf("timers %v", h.timers)
	}
}

func TestFailedChildIsATypedError(t *testing.T) {
	h := newHarness(t, caller, "A-2")
	h.childEnds("i1:1", StatusFailed, ErrorInfo{Type: "OutOfStock", Message: "none left"})
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"failed":"step ship.steps[0]: child i1:1 (Ship) failed: OutOfStock: none left","child":{"type":"OutOfStock","message":"none left"}}`)

	h = newHarness(t, caller, "A-3")
	h.childEnds("i1:1", StatusTerminated, "by hand")
	if !strings.Contains(string(h.st.Output), "was terminated: by hand") {
		t.Fatalf("output %s", h.st.Output)
	}
}

func TestTerminatingTheParentTerminatesItsChildren(t *testing.T) {
	h := newHarness(t, "FanOfCalls", nil)
	h.after = nil
	h.send(Event{Kind: EvTerminate, Reason: "stop"})
	var ids []string
	for _, c := range h.after {
		if tc, ok := c.(*TerminateChild); ok {
			ids = append(ids, string(tc.ID))
		}
	}
	if strings.Join(ids, " ") != "i1:1 i1:3" || len(h.timers) != 0 {
		t.Fatalf("terminated %v, timers %v", ids, h.timers)
	}
}

func TestCancelledBranchTerminatesItsChild(t *testing.T) {
	h := newHarness(t, "Race", nil)
	h.after = nil
	h.complete(1)
	h.wantJSON("output", h.st.Output, `"stopped"`)
	if len(h.after) != 1 {
		t.Fatalf("commands %+v", h.after)
	}
	if tc, ok := h.after[0].(*TerminateChild); !ok || tc.ID != "i1:1" {
		t.Fatalf("commands %+v", h.after)
	}
}

// TestOnItemPublishesProgressAsItemsEnd finishes the items of a forEach
// (maxConcurrency 3) out of order: each completion's own transition runs
// onItem once, which sets the parent's variables and the custom status
// (done counts up by one), and the sliding window stays at 3.
func TestOnItemPublishesProgressAsItemsEnd(t *testing.T) {
	items := []int{10, 20, 30, 40, 50, 60, 70}
	h := newHarness(t, "Progress", items)
	live := map[string]*ScheduleTask{}
	add := func(from int) {
		for _, tk := range h.tasks[from:] {
			var in struct{ N, I int }
			if err := json.Unmarshal(tk.Input, &in); err != nil || items[in.I] != in.N {
				t.Fatalf("task input %s: the index is not the item's position", tk.Input)
			}
			live[string(tk.Input)] = tk
		}
	}
	add(0)
	var ended []int
	for done := 1; len(live) > 0; done++ {
		if len(live) != min(3, len(items)-done+1) {
			t.Fatalf("before end %d: %d in flight", done, len(live))
		}
		// The newest first, so the items end out of order.
		var last *ScheduleTask
		for _, tk := range live {
			if last == nil || tk.TaskID > last.TaskID {
				last = tk
			}
		}
		delete(live, string(last.Input))
		var in struct{ N, I int }
		_ = json.Unmarshal(last.Input, &in)
		ended = append(ended, in.I)
		before, hist := len(h.tasks), len(h.hist)
		h.completeTask(last, in.N+1)
		add(before)
		var updates []string
		for _, e := range h.hist[hist:] {
			if e.Type == "CustomStatusUpdated" {
				updates = append(updates, string(e.Data))
			}
		}
		if len(updates) != 1 {
			t.Fatalf("end %d: %d status updates in its transition, want 1", done, len(updates))
		}
		var st struct{ Done, Total, Last int }
		if err := json.Unmarshal(json.RawMessage(updates[0]), &st); err != nil || st.Done != done || st.Total != len(items) || st.Last != in.N {
			t.Fatalf("end %d: status %s", done, updates[0])
		}
		if p := h.st.Pending; p != nil && p.Done != done {
			t.Fatalf("end %d: pending counts %d done", done, p.Done)
		}
	}
	h.wantStatus(StatusCompleted)
	seen, _ := json.Marshal(ended)
	h.wantJSON("output", h.st.Output, `{"out":[11,21,31,41,51,61,71],"seen":`+string(seen)+`,"sum":287}`)
}

// TestOnItemFailIsTheStepsError: a fail in onItem cancels the items still
// running and is the forEach's error, failing the instance.
func TestOnItemFailIsTheStepsError(t *testing.T) {
	h := newHarness(t, "Progress", []int{1, 2, 3, 4, 5})
	h.completeTask(h.tasks[1], -7)
	h.wantStatus(StatusFailed)
	h.wantErrorType("Negative")
	if !strings.Contains(string(h.st.Output), "item 1 is -7") || len(h.st.Threads) != 0 || len(h.st.Joins) != 0 {
		t.Fatalf("output %s, threads %+v, joins %+v", h.st.Output, h.st.Threads, h.st.Joins)
	}
	if string(h.st.CustomStatus) != `{"done":1,"last":2,"sum":-7,"total":5}` {
		t.Fatalf("custom status %s", h.st.CustomStatus)
	}
}

// TestOnItemFailGoesToTheStepsOnError: the forEach's onError takes an
// error of its onItem, after which the instance goes on.
func TestOnItemFailGoesToTheStepsOnError(t *testing.T) {
	h := newHarness(t, "ProgressCaught", nil)
	h.completeTask(h.taskFor(`1`), "ok")
	h.completeTask(h.taskFor(`3`), "bad")
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"caught":"Bad","count":2}`)
}

// TestOnBranchCountsBranches: onBranch sees each branch's number as it
// ends, in the order they end; a nested forEach's onItem sets the
// variables of the branch it stands in.
func TestOnBranchCountsBranches(t *testing.T) {
	h := newHarness(t, "ProgressBranch", nil)
	if string(h.st.CustomStatus) != `"1/3"` {
		t.Fatalf("custom status %s after the branch that ends at once", h.st.CustomStatus)
	}
	h.completeTask(h.taskFor(`"b"`), "B")
	if string(h.st.CustomStatus) != `"2/3"` {
		t.Fatalf("custom status %s", h.st.CustomStatus)
	}
	h.completeTask(h.taskFor(`"a"`), "A")
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"order":[2,1,0],"out":[{"a":"A"},{"b":"B"},{"inner":"x0y1","zs":[{"z":"x0"},{"z":"y1"}]}]}`)
}
