package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// TestRaiseIsCheckedAgainstEventsSchema: a raise whose payload breaks the
// workflow's events: schema is refused with 400; one that reaches the
// store anyway (another process, no check) is rejected by the interpreter
// and never delivered; a valid one is delivered.
func TestRaiseIsCheckedAgainstEventsSchema(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Pay", `
name: Pay
events:
  Paid:
    type: object
    required: [amount]
    properties: {amount: {type: number}}
steps:
  - wait: {event: Paid, result: paid}
  - return: ${ paid.amount }
`), http.StatusCreated, "deploy Pay")
	e.expect(e.do("POST", df+"/orchestrators/Pay/pay-1", "", nil), http.StatusAccepted, "start")

	r := e.do("POST", df+"/instances/pay-1/raiseEvent/Paid", "application/json", []byte(`{"amount":"ten"}`))
	if r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid-event" || !strings.Contains(string(r.body), "amount") {
		t.Fatalf("a raise that breaks the schema: %d %s", r.code, r.body)
	}
	// Past the API: the interpreter drops it.
	if err := e.store.RaiseEvent(context.Background(), "pay-1", "Paid", json.RawMessage(`{}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		h, err := e.store.FetchHistory(context.Background(), "pay-1")
		if err != nil {
			t.Fatal(err)
		}
		rejected := false
		for _, l := range h {
			rejected = rejected || l.Type == "EventRejected"
		}
		if rejected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EventRejected in the history: %+v", h)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, _ := e.store.FetchStatus(context.Background(), "pay-1"); st.Status.Terminal() {
		t.Fatalf("the rejected event ended the instance: %s %s", st.Status, st.Output)
	}

	e.expect(e.do("POST", df+"/instances/pay-1/raiseEvent/Paid", "application/json", []byte(`{"amount":10}`)), http.StatusAccepted, "a valid raise")
	st := e.waitFinished("pay-1")
	if st["runtimeStatus"] != string(interpreter.StatusCompleted) || st["output"] != 10.0 {
		t.Fatalf("after a valid Paid: %v", st)
	}
}
