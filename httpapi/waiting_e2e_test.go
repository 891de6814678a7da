package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// waitingFor polls GET status until its waitingFor satisfies ok, and
// returns it.
func (e *env) waitingFor(id string, ok func(w map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st := e.do("GET", df+"/instances/"+id, "", nil).json(e.t)
		if w, _ := st["waitingFor"].(map[string]any); w != nil && ok(w) {
			return w
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: waitingFor never as wanted: %v", id, st["waitingFor"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWaitingForShowsWhatTheInterpreterKnows: GET status's waitingFor
// carries a parallel forEach's branch counts, an any/all wait's events and
// a call's child id.
func TestWaitingForShowsWhatTheInterpreterKnows(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Fan", `
name: Fan
steps:
  - forEach:
      items: [1, 2, 3]
      parallel: true
      steps:
        - wait: {event: Go}
`), http.StatusCreated, "deploy Fan")
	e.expect(e.deploy("Both", `
name: Both
steps:
  - wait: {all: [{event: A}, {event: B}]}
`), http.StatusCreated, "deploy Both")
	e.expect(e.deploy("Parent", `
name: Parent
steps:
  - call: Both
`), http.StatusCreated, "deploy Parent")

	e.expect(e.do("POST", df+"/orchestrators/Fan/fan-1", "", nil), http.StatusAccepted, "start Fan")
	e.waitingFor("fan-1", func(w map[string]any) bool {
		return w["kind"] == "branches" && w["branches"] == 3.0 && w["done"] == 0.0
	})
	e.expect(e.do("POST", df+"/instances/fan-1/raiseEvent/Go", "application/json", []byte(`1`)), http.StatusAccepted, "raise Go")
	e.waitingFor("fan-1", func(w map[string]any) bool { return w["kind"] == "branches" && w["done"] == 1.0 })

	e.expect(e.do("POST", df+"/orchestrators/Both/both-1", "", nil), http.StatusAccepted, "start Both")
	e.waitingFor("both-1", func(w map[string]any) bool { return w["all"] == true && len(w["events"].([]any)) == 2 })
	e.expect(e.do("POST", df+"/instances/both-1/raiseEvent/B", "application/json", []byte(`1`)), http.StatusAccepted, "raise B")
	w := e.waitingFor("both-1", func(w map[string]any) bool { return w["received"] != nil })
	if got, _ := json.Marshal([]any{w["events"], w["received"]}); string(got) != `[["A"],["B"]]` {
		t.Errorf("all wait after B: events, received = %s", got)
	}

	e.expect(e.do("POST", df+"/orchestrators/Parent/parent-1", "", nil), http.StatusAccepted, "start Parent")
	w = e.waitingFor("parent-1", func(w map[string]any) bool { return w["kind"] == "child" })
	child, _ := w["child"].(string)
	// The engine creates the child just after the commit that names it
	// (interpreter/children.go), so the parent can be seen waiting for it
	// a moment before it exists.
	code := 0
	for deadline := time.Now().Add(30 * time.Second); code != http.StatusAccepted && time.Now().Before(deadline); {
		if code = e.do("GET", df+"/instances/"+child, "", nil).code; code != http.StatusAccepted {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code != http.StatusAccepted {
		t.Errorf("the child %q that waitingFor names: GET %d", child, code)
	}
}
