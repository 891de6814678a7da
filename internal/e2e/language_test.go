package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// End-to-end tests of the flow steps (while, try/catch, onError, typed
// fail, the workflow timeout, wait any/all, forEach, parallel,
// continueAsNew) on a real redis-server.

func TestLoopsAndErrorsOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("loop.yaml", []byte(`
name: LoopTry
activities:
  Double: {expr: "input * 2"}
  Check: {expr: "input > 20 ? fromJSON('x') : input"}
steps:
  - set: {n: 1, trail: []}
  - while:
      condition: n < 100
      max: 20
      steps:
        - activity: Double
          input: ${ n }
          result: n
        - set: {trail: "${ concat(trail, [n]) }"}
  - try:
      steps:
        - activity: Check
          input: ${ n }
      catch:
        as: problem
        steps:
          - setStatus: {caught: "${ problem.type }"}
  - fail:
      error: Done
      message: "reached ${ n }"
      data: ${ trail }
    onError:
      - return: {error: "${ error }", trail: "${ trail }"}
`))
	e.deploy("timeout.yaml", []byte(`
name: Deadline
timeout: 500ms
steps:
  - wait: {event: Never}
`))
	e.run(interpreter.EngineOptions{Consumer: "lang1"})
	e.start("LoopTry", "loop-1", nil)
	st := e.waitDone("loop-1", 20*time.Second)
	if st.Status != interpreter.StatusCompleted {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	jsonEq(t, "output", st.Output, `{"error":{"type":"Done","message":"reached 128","step":"steps[3]","data":[2,4,8,16,32,64,128]},"trail":[2,4,8,16,32,64,128]}`)
	jsonEq(t, "custom status", st.CustomStatus, `{"caught":"Error"}`)

	e.start("Deadline", "slow-1", nil)
	st = e.waitDone("slow-1", 20*time.Second)
	if st.Status != interpreter.StatusFailed || !strings.Contains(string(st.Output), "TimeoutError") {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
}

func TestWaitAnyAllOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("anyall.yaml", []byte(`
name: AnyAll
steps:
  - wait:
      any: [{event: Approved}, {event: Rejected}]
      result: decision
  - wait:
      all: [{event: Signed}, {event: Paid}]
      timeout: 20s
      result: papers
  - return: {decision: "${ decision }", papers: "${ papers }"}
`))
	e.start("AnyAll", "aa-1", nil)
	// Paid comes before any wait wants it: buffered, then taken by the all.
	if err := e.raise("aa-1", "Paid", 12.5); err != nil {
		t.Fatal(err)
	}
	e.run(interpreter.EngineOptions{Consumer: "lang2"})
	waitPending(t, e, "aa-1", func(p *interpreter.Pending) bool { return len(p.Events) == 2 && !p.All })
	e.raise("aa-1", "Rejected", "too dear")
	waitPending(t, e, "aa-1", func(p *interpreter.Pending) bool { return p.All && len(p.Events) == 1 })
	e.raise("aa-1", "Signed", "ada")
	st := e.waitDone("aa-1", 20*time.Second)
	jsonEq(t, "output", st.Output, `{"decision":{"event":"Rejected","data":"too dear"},"papers":{"Paid":12.5,"Signed":"ada"}}`)
}

// waitPending polls until the instance's pending wait satisfies ok.
func waitPending(t *testing.T, e *env, id string, ok func(*interpreter.Pending) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(id))
		if err == nil && st.Pending != nil && ok(st.Pending) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("instance %s never reached the expected wait", id)
}
