package activity_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
)

// caught is the error a catch by type hands its steps.
type caught struct {
	Type    string          `json:"type"`
	Message string          `json:"message"`
	Attempt int             `json:"attempt"`
	Data    json.RawMessage `json:"data"`
}

// tryWorkflow calls activity act (options indented under its name) in a
// try whose catch takes only the error types listed, and returns
// {result} or {caught: error}.
func tryWorkflow(name, act, options, types string) string {
	return "name: " + name + `
activities:
  ` + act + `:
` + options + `
steps:
  - try:
      steps:
        - activity: ` + act + `
          input: ${ input }
          result: r
      catch:
        errors: [` + types + `]
        steps:
          - return: {caught: "${ error }"}
  - return: {result: "${ r }"}
`
}

type tried struct {
	Result json.RawMessage `json:"result"`
	Caught *caught         `json:"caught"`
}

func (e *env) tried(id string) tried {
	e.t.Helper()
	var o tried
	e.output(id, &o)
	return o
}

// fail() in an expr binding fails the attempt with its type, message and
// data; a catch by that type takes it; it is not retried unless the retry
// policy lists the type as retryable.
func TestFailInExprBinding(t *testing.T) {
	e := newEnv(t)
	charge := `    expr: 'input.amount > 100 ? fail("CardDeclined", "card declined for " + string(input.amount), {limit: 100}) : {charged: input.amount}'`
	e.deploy(tryWorkflow("Final", "Charge", charge+"\n    retry: {maxAttempts: 3, firstInterval: 10ms}", "CardDeclined"))
	e.deploy(tryWorkflow("Retried", "Charge", charge+"\n    retry: {maxAttempts: 3, firstInterval: 10ms, retryable: [CardDeclined]}", "CardDeclined"))
	e.deploy(tryWorkflow("Uncaught", "Charge", charge, "OutOfStock"))
	e.runtime(activity.Options{})
	e.start("Final", "final", map[string]any{"amount": 150})
	e.start("Final", "fine", map[string]any{"amount": 50})
	e.start("Retried", "retried", map[string]any{"amount": 150})
	e.start("Uncaught", "uncaught", map[string]any{"amount": 150})

	o := e.tried("final")
	if o.Caught == nil || o.Caught.Type != "CardDeclined" || o.Caught.Message != "card declined for 150" ||
		o.Caught.Attempt != 1 || string(o.Caught.Data) != `{"limit":100}` {
		t.Fatalf("final: %s %+v", o.Result, o.Caught)
	}
	if n := len(e.history("final", "TaskScheduled")); n != 1 {
		t.Errorf("a typed failure not listed as retryable was scheduled %d times, want 1", n)
	}
	if o := e.tried("fine"); o.Caught != nil || string(o.Result) != `{"charged":50}` {
		t.Errorf("fine: %s %+v", o.Result, o.Caught)
	}
	o = e.tried("retried")
	if o.Caught == nil || o.Caught.Type != "CardDeclined" || o.Caught.Attempt != 3 {
		t.Fatalf("retried: %s %+v", o.Result, o.Caught)
	}
	if n := len(e.history("retried", "TaskScheduled")); n != 3 {
		t.Errorf("a retryable typed failure was scheduled %d times, want 3 (maxAttempts)", n)
	}
	// A catch of another type lets it through: the instance fails with it.
	st := e.wait("uncaught")
	var info interpreter.ErrorInfo
	if err := json.Unmarshal(st.Output, &info); err != nil || st.Status != interpreter.StatusFailed || info.Type != "CardDeclined" ||
		!strings.Contains(info.Message, "card declined for 150") {
		t.Errorf("uncaught: %s %s", st.Status, st.Output)
	}
}

// An http binding's url, query and body templates reach a real server
// escaped ('/', spaces, unicode, '&'); errors: gives statuses their types,
// retried only when retry.retryable lists them; unmapped statuses keep
// the HTTPError rules.
func TestHTTPTemplatesAndErrors(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	conflicts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.HasPrefix(r.URL.Path, "/orders/"):
			// RequestURI is the request line as sent: the escaping itself.
			fmt.Fprintf(w, `{"uri": %q, "method": %q, "body": %q}`, r.RequestURI, r.Method, body)
		case r.URL.Path == "/pay/declined":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPaymentRequired)
			w.Write([]byte(`{"reason": "insufficient funds"}`))
		case r.URL.Path == "/pay/conflict":
			mu.Lock()
			conflicts++
			n := conflicts
			mu.Unlock()
			if n < 3 {
				http.Error(w, "busy", http.StatusConflict)
				return
			}
			fmt.Fprintf(w, `{"paid": true, "body": %s}`, body)
		case r.URL.Path == "/pay/unmapped":
			http.Error(w, "no such card", http.StatusUnprocessableEntity)
		}
	}))
	defer srv.Close()

	e.deploy(tryWorkflow("Get", "GetLine", `    http:
      url: `+srv.URL+`/orders/${ input.id }/lines/${ input.line }?v=${ input.v }
      method: GET
      query:
        q: ${ input.q }
        tag: ${ input.tags }
        gone: ${ input.missing }`, "HTTPError"))
	e.deploy(tryWorkflow("Put", "PutOrder", `    http:
      url: `+srv.URL+`/orders/${ input.id }
      method: PUT
      body:
        order: ${ input.id }
        note: "line ${ input.line }"
        fixed: [1, true]`, "HTTPError"))
	pay := func(path string) string {
		return `    retry: {maxAttempts: 3, firstInterval: 10ms, retryable: [Conflict]}
    http:
      url: ` + srv.URL + `/pay/` + path + `
      errors: {402: CardDeclined, 409: Conflict}`
	}
	e.deploy(tryWorkflow("Declined", "Pay", pay("declined"), "CardDeclined"))
	e.deploy(tryWorkflow("Conflict", "Pay", pay("conflict"), "Conflict"))
	e.deploy(tryWorkflow("Unmapped", "Pay", pay("unmapped"), "HTTPError"))
	e.runtime(activity.Options{})

	in := map[string]any{"id": "a/b c", "line": "ü 1", "v": "x&y", "q": "née + co", "tags": []string{"a", "b/c"}, "amount": 5}
	e.start("Get", "get", in)
	e.start("Put", "put", in)
	e.start("Declined", "declined", in)
	e.start("Conflict", "conflict", in)
	e.start("Unmapped", "unmapped", in)

	var got struct{ URI, Method, Body string }
	o := e.tried("get")
	if o.Caught != nil || json.Unmarshal(o.Result, &got) != nil {
		t.Fatalf("get: %s %+v", o.Result, o.Caught)
	}
	if want := "/orders/a%2Fb%20c/lines/%C3%BC%201?v=x%26y&q=n%C3%A9e+%2B+co&tag=a&tag=b%2Fc"; got.URI != want || got.Method != "GET" || got.Body != "" {
		t.Errorf("get sent %s %s (body %q), want GET %s", got.Method, got.URI, got.Body, want)
	}
	o = e.tried("put")
	if o.Caught != nil || json.Unmarshal(o.Result, &got) != nil {
		t.Fatalf("put: %s %+v", o.Result, o.Caught)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(got.Body), &body); err != nil || got.URI != "/orders/a%2Fb%20c" || got.Method != "PUT" ||
		body["order"] != "a/b c" || body["note"] != "line ü 1" || fmt.Sprint(body["fixed"]) != "[1 true]" || len(body) != 3 {
		t.Errorf("put sent %s %s %s", got.Method, got.URI, got.Body)
	}

	o = e.tried("declined")
	if o.Caught == nil || o.Caught.Type != "CardDeclined" || o.Caught.Attempt != 1 || !strings.Contains(o.Caught.Message, "402") ||
		string(o.Caught.Data) != `{"body":{"reason":"insufficient funds"},"status":402}` {
		t.Fatalf("declined: %s %+v", o.Result, o.Caught)
	}
	if strings.Contains(o.Caught.Message, "a/b") {
		t.Errorf("the message quotes the url as sent, values and all: %s", o.Caught.Message)
	}
	if n := len(e.history("declined", "TaskScheduled")); n != 1 {
		t.Errorf("a mapped status not listed as retryable was tried %d times, want 1", n)
	}
	o = e.tried("conflict")
	if o.Caught != nil || !strings.Contains(string(o.Result), `"paid":true`) {
		t.Fatalf("conflict: %s %+v", o.Result, o.Caught)
	}
	if n := len(e.history("conflict", "TaskFailed")); n != 2 {
		t.Errorf("a retryable mapped status failed %d attempts, want 2 before the third succeeds", n)
	}
	o = e.tried("unmapped")
	if o.Caught == nil || o.Caught.Type != activity.ErrTypeHTTP || o.Caught.Attempt != 1 {
		t.Fatalf("unmapped: %s %+v", o.Result, o.Caught)
	}
}

// A template whose value cannot stand in a url, and a fail() in one, fail
// the attempt: the first as an ExpressionError naming the expression and
// its position, the second with the author's type.
func TestHTTPTemplateFailures(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("no request should be sent, got %s", r.RequestURI)
	}))
	defer srv.Close()
	e.deploy(tryWorkflow("Bad", "Get", `    http:
      url: `+srv.URL+`/orders/${ input.id }
      method: GET`, "ExpressionError"))
	e.deploy(tryWorkflow("Guard", "Get", `    http:
      url: `+srv.URL+`/orders/${ input.id ?? fail("MissingId", "the order has no id") }
      method: GET`, "MissingId"))
	e.runtime(activity.Options{})
	e.start("Bad", "bad", map[string]any{"id": map[string]any{"x": 1}})
	e.start("Guard", "guard", map[string]any{})

	o := e.tried("bad")
	if o.Caught == nil || o.Caught.Type != activity.ErrTypeExpression ||
		!strings.Contains(o.Caught.Message, `url: 5:45: `) || !strings.Contains(o.Caught.Message, `evaluating "input.id"`) ||
		!strings.Contains(o.Caught.Message, "not an object") {
		t.Fatalf("bad: %s %+v", o.Result, o.Caught)
	}
	o = e.tried("guard")
	if o.Caught == nil || o.Caught.Type != "MissingId" || o.Caught.Message != "the order has no id" {
		t.Fatalf("guard: %s %+v", o.Result, o.Caught)
	}
}
