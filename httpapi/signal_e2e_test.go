package httpapi_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
)

// TestSignalWithStart drives POST /v1/instances/{id}/events/{event}: a call
// for an id that does not run starts it and delivers the event; concurrent
// calls start it once and deliver every event; the errors a client can
// cause are answered with their codes.
func TestSignalWithStart(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Tally", `
name: Tally
input: {type: object, required: [need]}
steps:
  - set: {got: 0}
  - while:
      condition: got < input.need
      max: 100
      steps:
        - wait: {event: Vote}
        - set: {got: "${ got + 1 }"}
  - return: ${ got }
`), http.StatusCreated, "deploy Tally")
	in := url.QueryEscape(`{"need":5}`)
	path := "/v1/instances/tally-1/events/Vote?workflow=Tally&input=" + in
	var wg sync.WaitGroup
	started := make(chan bool, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.expect(e.do("POST", path, "application/json", []byte(`true`)), http.StatusAccepted, "signal-with-start")
			body := r.json(t)
			if body["id"] != "tally-1" || body["statusQueryGetUri"] == nil {
				t.Errorf("answer: %v", body)
			}
			started <- body["started"] == true
		}()
	}
	wg.Wait()
	close(started)
	n := 0
	for s := range started {
		if s {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of 5 concurrent calls started the instance, want 1", n)
	}
	st := e.waitFinished("tally-1")
	if st["runtimeStatus"] != "Completed" || st["output"] != 5.0 {
		t.Fatalf("tally-1 after 5 votes: %v", st)
	}

	for _, c := range []struct {
		path string
		code int
		err  string
	}{
		{"/v1/instances/t2/events/Vote", http.StatusBadRequest, "missing-workflow"},
		{"/v1/instances/t2/events/Vote?workflow=Nope", http.StatusNotFound, "unknown-workflow"},
		{"/v1/instances/t2/events/Vote?workflow=Tally&input=%7Bnope", http.StatusBadRequest, "invalid-json"},
		{"/v1/instances/t2/events/Vote?workflow=Tally&input=%7B%7D", http.StatusBadRequest, "invalid-input"},
	} {
		r := e.do("POST", c.path, "application/json", []byte(`true`))
		if r.code != c.code || r.json(t)["error"] != c.err {
			t.Errorf("POST %s: %d %s, want %d %s", c.path, r.code, r.body, c.code, c.err)
		}
	}
	if r := e.do("GET", "/runtime/webhooks/durabletask/instances/t2", "", nil); r.code != http.StatusNotFound {
		t.Errorf("a refused signal-with-start created t2: %d", r.code)
	}
}
