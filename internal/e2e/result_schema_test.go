package e2e

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// TestActivityResultIsCheckedAgainstOutput: a result that breaks the
// activity's output: schema fails the attempt as InvalidResult (caught by
// type here), is retried only when retry.retryable lists InvalidResult,
// and a valid one is delivered.
func TestActivityResultIsCheckedAgainstOutput(t *testing.T) {
	e := newEnv(t)
	e.run(interpreter.EngineOptions{Consumer: "out"})
	wf := func(name, retry string) []byte {
		return []byte(`
name: ` + name + `
activities:
  Echo:
    expr: input
    output: {type: number}` + retry + `
steps:
  - try:
      steps:
        - activity: Echo
          input: ${ input }
          result: n
        - return: ${ n }
      catch:
        errors: [InvalidResult]
        as: err
        steps:
          - return: ${ err.type + " after " + string(err.attempt) }
`)
	}
	e.deploy("checked.yaml", wf("Checked", ""))
	e.deploy("retried.yaml", wf("Retried", "\n    retry: {maxAttempts: 3, firstInterval: 1s, retryable: [InvalidResult]}"))
	e.start("Checked", "ok-1", 5)
	e.start("Checked", "bad-1", "five")
	if st := e.waitDone("ok-1", 20*time.Second); st.Status != interpreter.StatusCompleted || string(st.Output) != "5" {
		t.Fatalf("ok-1: %s %s", st.Status, st.Output)
	}
	st := e.waitDone("bad-1", 20*time.Second)
	jsonEq(t, "bad-1 output", st.Output, `"InvalidResult after 1"`)
	e.start("Retried", "bad-2", "five")
	st = e.waitDone("bad-2", 30*time.Second)
	jsonEq(t, "bad-2 output", st.Output, `"InvalidResult after 3"`)
}
