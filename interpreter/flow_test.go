package interpreter

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Tests of the flow steps: while, try/catch, onError on any step, typed
// fail, the workflow's timeout, wait any/all, forEach, parallel and
// continueAsNew. Each drives the pure step function with a fake clock.

func TestWhileLoopsUntilItsCondition(t *testing.T) {
	h := newHarness(t, `
name: Count
steps:
  - set: {i: 0, seen: []}
  - while:
      condition: i < 3
      max: 10
      steps:
        - activity: Tick
          input: ${ i }
          result: r
        - set: {i: "${ i + 1 }", seen: "${ concat(seen, [r]) }"}
  - return: ${ seen }
`, nil)
	for n := 0; n < 3; n++ {
		if got := string(h.lastTask().Input); got != itoa(n) {
			t.Fatalf("iteration %d: input %s", n, got)
		}
		h.complete(n * 10)
	}
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `[0,10,20]`)
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+n))) }

func TestWhileMaxIsLoopLimitExceeded(t *testing.T) {
	h := newHarness(t, `
name: Spin
steps:
  - set: {i: 0}
  - id: loop
    while:
      condition: "true"
      max: 5
      steps:
        - set: {i: "${ i + 1 }"}
`, nil)
	h.wantStatus(StatusFailed)
	h.wantErrorType(ErrTypeLoopLimit)
	if !strings.Contains(string(h.st.Output), `"step":"loop"`) {
		t.Fatalf("output %s", h.st.Output)
	}
}

func TestWhileIfIsCheckedOnceAndConditionSeesTheBody(t *testing.T) {
	h := newHarness(t, `
name: IfOnce
steps:
  - set: {n: 0}
  - if: n == 0
    while:
      condition: done != true
      max: 100
      steps:
        - set: {n: "${ n + 1 }"}
        - set: {done: "${ n >= 4 }"}
  - return: ${ n }
`, nil)
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `4`)
}

func TestLongLoopYieldsBetweenTransitions(t *testing.T) {
	h := newHarness(t, `
name: Long
steps:
  - set: {i: 0}
  - while:
      condition: i < 25000
      max: 100000
      steps:
        - set: {i: "${ i + 1 }"}
  - return: ${ i }
`, nil)
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
	h := newHarness(t, `
name: Try
steps:
  - try:
      steps:
        - set: {a: 1}
        - id: boom
          fail: {error: OutOfStock, message: "no ${ input }", data: {sku: "${ input }"}}
      catch:
        as: e
        steps:
          - set: {caught: "${ e }"}
  - return: {a: "${ a }", caught: "${ caught }"}
`, "X1")
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `{"a":1,"caught":{"type":"OutOfStock","message":"no X1","step":"boom","data":{"sku":"X1"}}}`)
	if _, ok := h.st.Vars["e"]; ok {
		t.Fatal("the catch's variable outlived the catch")
	}
}

func TestCatchSelectsByTypeAndRethrows(t *testing.T) {
	src := `
name: Typed
steps:
  - try:
      steps:
        - try:
            steps:
              - fail: {error: "${ input }", message: inner}
            catch:
              errors: [A]
              steps:
                - set: {by: inner}
      catch:
        errors: [B, C]
        steps:
          - set: {by: outer}
          - if: error.type == "C"
            fail: {error: Rethrown, message: "${ error.message }"}
  - return: ${ by }
`
	for in, want := range map[string]string{"A": `"inner"`, "B": `"outer"`} {
		h := newHarness(t, src, in)
		h.wantStatus(StatusCompleted)
		h.wantJSON("output", h.st.Output, want)
	}
	h := newHarness(t, src, "C")
	h.wantErrorType("Rethrown")
	h = newHarness(t, src, "D")
	h.wantErrorType("D")
}

func TestCatchRestoresAShadowedVariable(t *testing.T) {
	h := newHarness(t, `
name: Shadow
steps:
  - set: {e: outer}
  - try:
      steps:
        - fail: {error: X}
      catch:
        as: e
        steps:
          - set: {inside: "${ e.type }"}
  - return: ["${ e }", "${ inside }"]
`, nil)
	h.wantJSON("output", h.st.Output, `["outer","X"]`)
}

func TestOnErrorOnAnyStepKind(t *testing.T) {
	h := newHarness(t, `
name: OnError
steps:
  - id: pick
    set: {x: "${ input.a.b }"}
    onError:
      - set: {x: fallback, why: "${ error.type }"}
  - id: sw
    switch:
      - when: x == "fallback"
        steps:
          - wait: {event: Go, timeout: 5s}
    onError:
      - set: {timedOut: "${ error.type }"}
  - return: ["${ x }", "${ why }", "${ timedOut }"]
`, map[string]any{})
	h.wantStatus(StatusRunning)
	h.fireNext()
	h.wantStatus(StatusCompleted)
	h.wantJSON("output", h.st.Output, `["fallback","ExpressionError","TimeoutError"]`)
	if _, ok := h.st.Vars["error"]; ok {
		t.Fatal("error outlived its onError")
	}
}

func TestErrorInCatchGoesPastTheTry(t *testing.T) {
	h := newHarness(t, `
name: Past
steps:
  - try:
      steps:
        - try:
            steps:
              - fail: {error: First}
            catch:
              steps:
                - fail: {error: Second}
          onError:
            - set: {got: "${ error.type }"}
      catch:
        steps:
          - set: {got: never}
  - return: ${ got }
`, nil)
	h.wantJSON("output", h.st.Output, `"Second"`)
}

func TestActivityErrorCaughtAroundALoop(t *testing.T) {
	h := newHarness(t, `
name: LoopTry
steps:
  - set: {i: 0}
  - try:
      steps:
        - while:
            condition: i < 10
            max: 10
            steps:
              - set: {i: "${ i + 1 }"}
              - activity: Work
      catch:
        steps:
          - return: {i: "${ i }", error: "${ error }"}
`, nil)
	h.complete(1)
	h.send(Event{Kind: EvFailed, TaskID: h.lastTask().TaskID, Error: &ErrorInfo{Type: "Down", Message: "gone"}})
	h.wantJSON("output", h.st.Output, `{"i":2,"error":{"type":"Down","message":"gone","step":"steps[1].steps[0].steps[1]","attempt":1}}`)
}

func TestTypedFailIsTheOutput(t *testing.T) {
	h := newHarness(t, `
name: Fails
steps:
  - id: stop
    fail: {error: InvalidChoice, message: "choice ${ input }", data: {choice: "${ input }"}}
`, 9)
	h.wantStatus(StatusFailed)
	h.wantJSON("output", h.st.Output, `{"type":"InvalidChoice","message":"choice 9","step":"stop","data":{"choice":9}}`)
}

func TestWorkflowTimeout(t *testing.T) {
	src := `
name: Slow
timeout: 10s
steps:
  - try:
      steps:
        - wait: {event: Never}
      catch:
        steps:
          - return: caught
`
	h := newHarness(t, src, nil)
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
	h = newHarness(t, src, nil)
	h.raise("Never", 1)
	h.wantStatus(StatusCompleted)
	if len(h.timers) != 0 || h.st.Timeout != nil {
		t.Fatalf("timers left: %v %+v", h.timers, h.st.Timeout)
	}
}

func TestWaitAnyTakesTheFirstAndSaysWhich(t *testing.T) {
	src := `
name: Any
steps:
  - wait:
      any: [{event: Approved}, {event: Rejected}]
      timeout: 1h
      result: d
  - return: ${ d }
`
	h := newHarness(t, src, nil)
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
	h = newHarness(t, `
name: AnyBuffered
steps:
  - wait: {duration: 1s}
  - wait:
      any: [{event: A}, {event: B}]
      result: d
  - return: ${ d }
`, nil)
	h.raise("B", 2)
	h.raise("A", 1)
	h.fireNext()
	h.wantJSON("output", h.st.Output, `{"event":"B","data":2}`)
	if len(h.st.Buffered) != 1 || h.st.Buffered[0].Name != "A" {
		t.Fatalf("buffered %v", h.st.Buffered)
	}
}

func TestWaitAnyTimesOut(t *testing.T) {
	h := newHarness(t, `
name: AnyTimeout
steps:
  - id: w
    wait:
      any: [{event: A}, {event: B}]
      timeout: 1m
`, nil)
	h.fireNext()
	h.wantErrorType(ErrTypeTimeout)
	if !strings.Contains(string(h.st.Output), `none of the events \"A\", \"B\" arrived`) {
		t.Fatalf("output %s", h.st.Output)
	}
}

func TestWaitAllCollectsEveryEvent(t *testing.T) {
	src := `
name: All
steps:
  - wait:
      all: [{event: Signed}, {event: Paid}]
      timeout: 1h
      result: got
      onTimeout:
        - return: {partial: "${ got }"}
  - return: ${ got }
`
	h := newHarness(t, src, nil)
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

	h = newHarness(t, src, nil)
	h.raise("Signed", true)
	h.fireNext()
	h.wantJSON("output", h.st.Output, `{"partial":{"Signed":true}}`)

	// Both buffered before the wait: it goes straight on.
	h = newHarness(t, `
name: AllBuffered
steps:
  - wait: {duration: 1s}
  - wait:
      all: [{event: A}, {event: B}]
      result: got
  - return: ${ got }
`, nil)
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
	h := newHarness(t, `
name: Par
steps:
  - set: {region: eu, shared: parent}
  - id: fan
    parallel:
      branches:
        - - activity: A
            input: a
            result: x
          - set: {shared: branch0}
        - - activity: B
            input: b
            result: y
        - - set: {z: "${ region }"}
      result: r
  - return: {r: "${ r }", shared: "${ shared }"}
`, nil)
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
	h := newHarness(t, `
name: ParFail
steps:
  - id: fan
    parallel:
      branches:
        - - wait: {event: Never, timeout: 1h}
        - - activity: Slow
            input: slow
        - - activity: Check
            input: check
          - fail: {error: Rejected, message: no}
    onError:
      - return: ${ error }
`, nil)
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
	h := newHarness(t, `
name: ParTry
steps:
  - parallel:
      branches:
        - - try:
              steps:
                - activity: Flaky
                  input: 1
                  result: v
              catch:
                steps:
                  - set: {v: fallback}
        - - activity: Fine
            input: 2
            result: w
      result: r
  - return: ${ r }
`, nil)
	h.send(Event{Kind: EvFailed, TaskID: h.taskFor(`1`).TaskID, Error: &ErrorInfo{Type: "Down"}})
	h.wantStatus(StatusRunning)
	h.completeTask(h.taskFor(`2`), "ok")
	h.wantJSON("output", h.st.Output, `[{"v":"fallback"},{"w":"ok"}]`)
}

func TestUnhandledBranchErrorFailsTheInstance(t *testing.T) {
	h := newHarness(t, `
name: ParUnhandled
steps:
  - parallel:
      branches:
        - - activity: A
        - - wait: {event: E}
`, nil)
	h.send(Event{Kind: EvFailed, TaskID: h.lastTask().TaskID, Error: &ErrorInfo{Type: "Boom", Message: "bad"}})
	h.wantErrorType("Boom")
	if len(h.st.Threads) != 0 {
		t.Fatalf("threads left %v", h.st.Threads)
	}
}

func TestForEachSequentialInOrder(t *testing.T) {
	h := newHarness(t, `
name: Seq
steps:
  - set: {factor: 10}
  - forEach:
      items: ${ input }
      as: n
      steps:
        - activity: Scale
          input: ${ n * factor }
          result: scaled
      result: out
  - return: ${ map(out, .scaled) }
`, []int{1, 2, 3})
	for i, in := range []string{"10", "20", "30"} {
		if len(h.st.Threads) != 1 || h.st.Threads[0].ID != "steps[1]/"+itoa(i) {
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
	h := newHarness(t, `
name: Fan
steps:
  - forEach:
      items: ${ 1..10 }
      parallel: true
      maxConcurrency: 3
      steps:
        - activity: Work
          input: ${ item }
          result: v
      result: out
  - return: ${ map(out, .v) }
`, nil)
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
	src := `
name: Edge
steps:
  - forEach:
      items: ${ input }
      parallel: true
      steps:
        - set: {double: "${ item * 2 }"}
      result: out
  - return: ${ out }
`
	h := newHarness(t, src, []int{})
	h.wantJSON("output", h.st.Output, `[]`)
	h = newHarness(t, src, []int{4, 5})
	h.wantJSON("output", h.st.Output, `[{"double":8},{"double":10}]`)
	h = newHarness(t, src, "not a list")
	h.wantErrorType(ErrTypeItems)
}

func TestEventsReachBranchWaits(t *testing.T) {
	h := newHarness(t, `
name: ParEvents
steps:
  - forEach:
      items: [A, B]
      parallel: true
      steps:
        - wait: {event: Go, result: got}
      result: out
  - return: ${ out }
`, nil)
	h.raise("Go", 1)
	h.wantStatus(StatusRunning)
	h.raise("Go", 2)
	h.wantJSON("output", h.st.Output, `[{"got":1},{"got":2}]`)
}

func TestNestedBranches(t *testing.T) {
	h := newHarness(t, `
name: Nested
steps:
  - forEach:
      items: [[1, 2], [3]]
      as: group
      parallel: true
      steps:
        - forEach:
            items: ${ group }
            as: n
            parallel: true
            steps:
              - activity: Sq
                input: ${ n }
                result: sq
            result: inner
        - set: {sum: "${ sum(map(inner, .sq)) }"}
      result: out
  - return: ${ map(out, .sum) }
`, nil)
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
	h := newHarness(t, `
name: ParTerm
steps:
  - parallel:
      branches:
        - - wait: {duration: 1h}
        - - wait: {event: E, timeout: 2h}
`, nil)
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
	src := `
name: Det
steps:
  - forEach:
      items: ${ 1..20 }
      parallel: true
      maxConcurrency: 5
      steps:
        - activity: W
          input: ${ item }
          result: v
      result: out
  - return: ${ out }
`
	a := newHarness(t, src, nil)
	b := newHarness(t, src, nil)
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
	h := newHarness(t, `
name: Gen
timeout: 1h
steps:
  - if: input == 0
    setStatus: {first: true}
  - set: {seen: "${ input }"}
  - wait: {event: Tick, result: tick}
  - if: input >= 2
    return: {input: "${ input }", tick: "${ tick }"}
  - continueAsNew:
      input: ${ input + 1 }
`, 0)
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
	h := newHarness(t, `
name: Spin
steps:
  - if: input >= 20000
    return: ${ input }
  - continueAsNew: {input: "${ input + 1 }"}
`, 0)
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
	h := newHarness(t, `
name: Chatty
steps:
  - set: {i: 0}
  - while:
      condition: i < 1000
      max: 1000
      steps:
        - set: {i: "${ i + 1 }"}
        - setStatus: ${ i }
`, nil)
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

const caller = `
name: Caller
steps:
  - id: ship
    try:
      steps:
        - call: Ship
          input: {order: "${ input }"}
          result: shipment
      catch:
        errors: [ChildWorkflowFailed]
        steps:
          - return: {failed: "${ error.message }", child: "${ error.data }"}
  - return: ${ shipment }
`

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
	h := newHarness(t, `
name: Fan
steps:
  - forEach:
      items: [a, b]
      parallel: true
      steps:
        - call: Work
          input: ${ item }
`, nil)
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
	h := newHarness(t, `
name: Race
steps:
  - parallel:
      branches:
        - - call: Slow
        - - activity: Check
          - fail: {error: Stop}
    onError:
      - return: stopped
`, nil)
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
