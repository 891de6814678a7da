package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/redistest"
)

// hostileWorkflows are deployed at start: a canary that must be unaffected
// by everything else, an echo for hostile inputs, and workflows that do
// hostile things at run time.
var hostileWorkflows = map[string]string{
	"Canary": `
name: Canary
steps:
  - setStatus: {alive: true}
  - wait: {event: Go, result: got}
  - return: ${ got }
`,
	"Echo": `
name: Echo
steps:
  - return: ${ input }
`,
	"Keep": `
name: Keep
steps:
  - wait: {event: Done}
  - return: kept
`,
	"BigStatus": `
name: BigStatus
steps:
  - setStatus: ${ repeat("x", 20000) }
  - return: unreachable
`,
	// Loops: one that never ends by itself runs into its max, one that
	// doubles a string into the variables limit, and two nested ones
	// that would take 10^10 iterations: they yield every 10,000 steps and
	// must not hold up anything else; the client terminates them.
	"Spin": `
name: Spin
steps:
  - set: {n: 0}
  - while:
      condition: "true"
      max: 100000
      steps:
        - set: {n: "${ n + 1 }"}
  - return: ${ n }
`,
	"Grow": `
name: Grow
steps:
  - set: {s: x}
  - while:
      condition: "true"
      max: 100000
      steps:
        - set: {s: "${ s + s }"}
  - return: never
`,
	"Forever": `
name: Forever
steps:
  - set: {n: 0}
  - while:
      condition: "true"
      max: 100000
      steps:
        - set: {i: 0}
        - while:
            condition: i < 99999
            max: 100000
            steps:
              - set: {i: "${ i + 1 }", n: "${ n + 1 }"}
  - return: never
`,
	"BigStatusFromInput": `
name: BigStatusFromInput
steps:
  - setStatus: {echo: "${ input }"}
  - return: unreachable
`,
}

// expressionBombs are workflows whose expressions try to allocate far too
// much or to run for very long; each must fail its own instance with an
// ExpressionError and nothing else, and the process must stay under
// memoryCeiling. Each stands for a way an expression once could, before
// dsl bounded it (dsl/budget.go); unbounded, the allocation ones ask for
// gigabytes to terabytes and kill the process, the work ones run for
// minutes to years.
var expressionBombs = []struct{ name, expr string }{
	// The VM's memory budget (elements of ranges, lists and maps).
	{"HugeRange", `len(map(1..100000000, #))`},
	{"WideRange", `len(1..2000000000)`},
	{"NestedLoops", `count(1..100000, {count(1..100000, {true}) > 0})`},
	{"NestedReduce", `reduce(1..999999, reduce(1..999999, #acc + 1, 0), 0)`},
	{"SortHuge", `len(sortBy(1..5000000, {-#}))`},
	{"ManyStrings", `len(join(map(1..999999, {"xxxxxxxxxx"}), ""))`},
	{"DeepInputJSON", `len(toJSON(map(1..999999, {[[[[[#]]]]]})))`},
	// Text built in one operation, checked before it is allocated.
	{"RepeatBomb", `len(repeat(repeat("x", 999999), 1000000))`},
	{"ConcatBomb", `len(let s = repeat("x", 999999); let a = s + s; let b = a + a; let c = b + b; let d = c + c; let e = d + d; let f = e + e; let g = f + f; g + g)`},
	{"JoinBomb", `let s = repeat("x", 999999); len(join(map(1..100000, s), s))`},
	{"ReplaceBomb", `len(replace(repeat("x", 999999), "", repeat("y", 999999)))`},
	{"ToJSONBomb", `len(toJSON(reduce(1..60, [#acc, #acc], 0)))`},
	{"ToJSONIndentBomb", `len(toJSON(reduce(1..9000, [#acc], 0)))`},
	{"StringBomb", `let s = repeat("x", 999999); len(string(map(1..100000, s)))`},
	// Many operations, each within bounds, adding up.
	{"ArrayConcatBomb", `let a = 1..999; let b = concat(a,a,a,a,a,a,a,a,a,a); let c = concat(b,b,b,b,b,b,b,b,b,b); let d = concat(c,c,c,c,c,c,c,c,c,c); let e = concat(d,d,d,d,d,d,d,d,d,d); len(e)`},
	{"SplitBomb", `let s = repeat("x", 999999); len(map(1..1000, split(s, "")))`},
	{"UpperBomb", `let s = repeat("x", 999999); len(map(1..1000, upper(s)))`},
	{"ReduceConcatBomb", `len(reduce(1..999999, #acc + "xxxxxxxxxx", ""))`},
	{"FlattenBomb", `len(flatten(reduce(1..60, [#acc, #acc], 0)))`},
	{"GroupByBomb", `let r = 1..300000; len(map(1..100, groupBy(r, #)))`},
	// The VM keeps the state of every loop it starts until the end.
	{"LoopStartsBomb", `let e = [0]; let r = 1..1000; count(r, count(r, any(e, # == 0)) == 1000)`},
	// A list holding itself 2^60 times in 120 elements, as a result.
	{"SelfNestingResult", `reduce(1..60, [#acc, #acc], 0)`},
	// Work, without much memory.
	{"NestedClosures", `let r = 1..1000; reduce(r, reduce(r, reduce(r, #acc + 1, 0), 0), 0)`},
	{"NestedCounts", `let r = 1..1000; count(r, count(r, count(r, true) == 1000) == 1000)`},
	{"UniqBomb", `len(uniq(1..500000))`},
	{"RegexBomb", `let s = repeat("ab", 499999); count(1..100000, s matches "[a-z]{50}q")`},
	{"EqualityBomb", `let s = repeat("x", 999999); let t = repeat("x", 999999); let r = 1..1000; count(r, count(r, s == t) > 0)`},
	{"KeyHashBomb", `let k = repeat("x", 999999); let m = {a: 1}; let r = 1..1000; count(r, count(r, m[k] == nil) > 0)`},
}

// memoryCeiling is the most a cairn process may grow to while it runs
// every expression bomb (two at a time, one per engine worker).
const memoryCeiling = 400 << 20

func bombWorkflow(name, expr string) string {
	return fmt.Sprintf("name: %s\nsteps:\n  - return: %s\n", name, strconv.Quote("${ "+expr+" }"))
}

// hostileCase is one request and the answer it must get.
type hostileCase struct {
	name    string
	method  string
	path    string
	ctype   string
	body    []byte
	chunked bool // send the body without Content-Length
	headers []string
	code    int
	errCode string // the JSON "error", "" = not checked (success or not JSON)
}

// TestHostileInput sends malformed, huge, deep and hostile requests and
// workflows to one cairn process. Each gets its documented 4xx, or fails
// its own instance cleanly; the server stays up, answers /healthz, and a
// canary instance started before is unaffected and completes afterwards.
func TestHostileInput(t *testing.T) {
	rs := redistest.Start(t)
	wfs := map[string]string{}
	for k, v := range hostileWorkflows {
		wfs[k] = v
	}
	// An activity whose far end answers hostile results.
	far := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/deep":
			fmt.Fprint(w, strings.Repeat("[", 10000)+strings.Repeat("]", 10000))
		case "/huge-number":
			fmt.Fprint(w, `{"n":1e999999}`)
		}
	}))
	defer far.Close()
	for _, name := range []string{"deep", "huge-number"} {
		wf := "Result-" + name
		wfs[wf] = fmt.Sprintf("name: %s\nactivities:\n  Fetch:\n    http: {url: %q}\nsteps:\n  - activity: Fetch\n    result: r\n  - return: done\n", wf, far.URL+"/"+name)
	}
	book := &logBook{}
	p := startCairn(t, book, serveOpts{redis: rs.URL(), workflows: writeWorkflows(t, wfs)})
	c := newClient(p.url, "")
	if r := c.must(t, "POST", df+"/orchestrators/Canary/canary", "application/json", []byte(`{"n":1}`)); r.code != 202 {
		t.Fatalf("canary: %v", r)
	}
	waitStatus(t, c, "canary", func(s *status) bool { return s.RuntimeStatus == "Running" })
	if r := c.must(t, "POST", df+"/orchestrators/Keep/keep", "application/json", nil); r.code != 202 {
		t.Fatalf("keep: %v", r)
	}

	deep := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	huge := []byte(`"` + strings.Repeat("a", 2<<20) + `"`)
	bomb := billionLaughs()
	start := df + "/orchestrators/Echo/"
	ev := df + "/instances/keep/raiseEvent/"
	cases := []hostileCase{
		// Malformed and huge JSON.
		{name: "malformed JSON input", method: "POST", path: start + "h1", ctype: "application/json", body: []byte(`{"a":`), code: 400, errCode: "invalid-json"},
		{name: "malformed JSON event", method: "POST", path: ev + "E", ctype: "application/json", body: []byte(`[1,2,,]`), code: 400, errCode: "invalid-json"},
		{name: "NaN is not JSON", method: "POST", path: start + "h2", ctype: "application/json", body: []byte(`{"a":NaN}`), code: 400, errCode: "invalid-json"},
		{name: "trailing garbage", method: "POST", path: start + "h3", ctype: "application/json", body: []byte(`{} {}`), code: 400, errCode: "invalid-json"},
		{name: "2 MiB input", method: "POST", path: start + "h4", ctype: "application/json", body: huge, code: 413, errCode: "payload-too-large"},
		{name: "2 MiB input, chunked", method: "POST", path: start + "h5", ctype: "application/json", body: huge, chunked: true, code: 413, errCode: "payload-too-large"},
		{name: "2 MiB event", method: "POST", path: ev + "E", ctype: "application/json", body: huge, code: 413, errCode: "payload-too-large"},
		{name: "2 MiB workflow", method: "PUT", path: "/v1/workflows/Huge", ctype: "application/yaml", body: append([]byte("name: Huge\n#"), bytes.Repeat([]byte("x"), 2<<20)...), code: 413, errCode: "payload-too-large"},
		// Nesting: bodies may nest 256 levels (what expressions handle).
		{name: "input nested 256 deep", method: "POST", path: start + "deep-256", ctype: "application/json", body: deep(256), code: 202},
		{name: "input nested 257 deep", method: "POST", path: start + "h6", ctype: "application/json", body: deep(257), code: 400, errCode: "invalid-json"},
		{name: "input nested 10,000 deep", method: "POST", path: start + "h7", ctype: "application/json", body: deep(10000), code: 400, errCode: "invalid-json"},
		{name: "input nested 1,000,000 deep", method: "POST", path: start + "h7", ctype: "application/json", body: deep(1000000), code: 413, errCode: "payload-too-large"},
		{name: "input nested 600,000 deep, cut to 1 MiB", method: "POST", path: start + "h7", ctype: "application/json", body: deep(600000)[:1<<20-1], code: 400, errCode: "invalid-json"},
		{name: "event nested 256 deep", method: "POST", path: ev + "Deep", ctype: "application/json", body: deep(256), code: 202},
		{name: "event nested 10,000 deep", method: "POST", path: ev + "Deep", ctype: "application/json", body: deep(10000), code: 400, errCode: "invalid-json"},
		{name: "number beyond float64", method: "POST", path: start + "h8", ctype: "application/json", body: []byte(`{"n":1e999999}`), code: 400, errCode: "invalid-json"},
		{name: "workflow nested 10,000 deep", method: "PUT", path: "/v1/workflows/Deep", ctype: "application/yaml", body: append([]byte("name: Deep\nsteps:\n  - return: "), deep(10000)...), code: 422, errCode: "invalid-workflow"},
		// Invalid UTF-8.
		{name: "invalid UTF-8 input", method: "POST", path: start + "h8", ctype: "application/json", body: []byte("\"\xff\xfe\""), code: 400, errCode: "invalid-utf8"},
		{name: "invalid UTF-8 event", method: "POST", path: ev + "E", ctype: "application/json", body: []byte("[\"\xc3\x28\"]"), code: 400, errCode: "invalid-utf8"},
		{name: "invalid UTF-8 workflow", method: "PUT", path: "/v1/workflows/Bad", ctype: "application/yaml", body: []byte("name: Bad\nsteps:\n  - return: \xff\n"), code: 400, errCode: "invalid-utf8"},
		{name: "invalid UTF-8 id", method: "POST", path: start + "a%FFb", code: 400, errCode: "invalid-instance-id"},
		// Instance ids.
		{name: "id with /", method: "POST", path: start + "a%2Fb", code: 400, errCode: "invalid-instance-id"},
		{name: "id with \\", method: "POST", path: start + "a%5Cb", code: 400, errCode: "invalid-instance-id"},
		{name: "id with #", method: "POST", path: start + "a%23b", code: 400, errCode: "invalid-instance-id"},
		{name: "id with ?", method: "POST", path: start + "a%3Fb", code: 400, errCode: "invalid-instance-id"},
		{name: "id with NUL", method: "POST", path: start + "a%00b", code: 400, errCode: "invalid-instance-id"},
		{name: "id with newline", method: "POST", path: start + "a%0Ab", code: 400, errCode: "invalid-instance-id"},
		{name: "id with DEL", method: "POST", path: start + "a%7Fb", code: 400, errCode: "invalid-instance-id"},
		{name: "id with U+0085", method: "POST", path: start + "a%C2%85b", code: 400, errCode: "invalid-instance-id"},
		{name: "id starting with @", method: "POST", path: start + "@entity", code: 400, errCode: "invalid-instance-id"},
		{name: "id of 257 characters", method: "POST", path: start + strings.Repeat("i", 257), code: 400, errCode: "invalid-instance-id"},
		{name: "id of 257 characters, multi-byte", method: "POST", path: start + strings.Repeat("%C3%A9", 257), code: 400, errCode: "invalid-instance-id"},
		{name: "id of 256 characters is fine", method: "POST", path: start + strings.Repeat("%C3%A9", 256), code: 202},
		{name: "status of an id with /", method: "GET", path: df + "/instances/..%2F..%2Fetc", code: 400, errCode: "invalid-instance-id"},
		{name: "event into an id with NUL", method: "POST", path: df + "/instances/a%00/raiseEvent/E", ctype: "application/json", code: 400, errCode: "invalid-instance-id"},
		{name: "terminate an id of 257", method: "POST", path: df + "/instances/" + strings.Repeat("t", 257) + "/terminate", code: 400, errCode: "invalid-instance-id"},
		{name: "purge an id with control", method: "DELETE", path: df + "/instances/a%1Bb", code: 400, errCode: "invalid-instance-id"},
		// Event names.
		{name: "event name of 300 bytes", method: "POST", path: ev + strings.Repeat("e", 300), ctype: "application/json", code: 400, errCode: "invalid-event-name"},
		{name: "event name with control", method: "POST", path: ev + "a%01b", ctype: "application/json", code: 400, errCode: "invalid-event-name"},
		// Unknown workflows and instances.
		{name: "unknown workflow", method: "POST", path: df + "/orchestrators/NoSuchFlow", ctype: "application/json", code: 404, errCode: "unknown-workflow"},
		{name: "unknown workflow, odd name", method: "POST", path: df + "/orchestrators/%00%FF..%2F", code: 404, errCode: "unknown-workflow"},
		{name: "unknown instance", method: "GET", path: df + "/instances/nobody", code: 404, errCode: "not-found"},
		{name: "get unknown workflow", method: "GET", path: "/v1/workflows/NoSuchFlow", code: 404, errCode: "unknown-workflow"},
		// Content types.
		{name: "event as text/plain", method: "POST", path: ev + "E", ctype: "text/plain", body: []byte(`1`), code: 400, errCode: "json-required"},
		{name: "event without content type", method: "POST", path: ev + "E", body: []byte(`1`), code: 400, errCode: "json-required"},
		{name: "event with a broken content type", method: "POST", path: ev + "E", ctype: "application/json; charset=\"", body: []byte(`1`), code: 400, errCode: "json-required"},
		{name: "workflow as JSON", method: "PUT", path: "/v1/workflows/Echo", ctype: "application/json", body: []byte(`{"name":"Echo"}`), code: 415, errCode: "unsupported-media-type"},
		{name: "workflow without content type", method: "PUT", path: "/v1/workflows/Echo", body: []byte("name: Echo\n"), code: 415, errCode: "unsupported-media-type"},
		// YAML bomb.
		{name: "billion laughs", method: "PUT", path: "/v1/workflows/Bomb", ctype: "application/yaml", body: bomb, code: 422, errCode: "invalid-workflow"},
		{name: "billion laughs, validate", method: "POST", path: "/v1/validate", ctype: "application/yaml", body: bomb, code: 422, errCode: "invalid-workflow"},
		// Parameters, routes, methods, headers.
		{name: "top not a number", method: "GET", path: df + "/instances?top=1e999", code: 400, errCode: "bad-parameter"},
		{name: "negative timeout", method: "POST", path: start + "h9?timeout=-1", code: 400, errCode: "bad-parameter"},
		{name: "bad time", method: "GET", path: df + "/instances?createdTimeFrom=yesterday", code: 400, errCode: "bad-parameter"},
		{name: "bad boolean", method: "GET", path: df + "/instances/keep?showHistory=maybe", code: 400, errCode: "bad-parameter"},
		{name: "bad continuation token", method: "GET", path: df + "/instances", headers: []string{"x-ms-continuation-token", "%%not-a-token%%"}, code: 400},
		{name: "wrong method", method: "PATCH", path: df + "/instances/keep", code: 405, errCode: "method-not-allowed"},
		{name: "unknown route", method: "GET", path: "/../../etc/passwd", code: 404, errCode: "not-found"},
		{name: "2 MiB header", method: "GET", path: "/healthz", headers: []string{"X-Big", strings.Repeat("h", 2<<20)}, code: 431},
	}
	for _, b := range expressionBombs {
		wfBody := []byte(bombWorkflow(b.name, b.expr))
		cases = append(cases,
			hostileCase{name: "deploy expression bomb " + b.name, method: "PUT", path: "/v1/workflows/" + b.name, ctype: "application/yaml", body: wfBody, code: 201},
			hostileCase{name: "start expression bomb " + b.name, method: "POST", path: df + "/orchestrators/" + b.name + "/bomb-" + b.name, code: 202})
	}
	cases = append(cases,
		hostileCase{name: "activity answering JSON 10,000 deep", method: "POST", path: df + "/orchestrators/Result-deep/result-deep", code: 202},
		hostileCase{name: "activity answering a number beyond float64", method: "POST", path: df + "/orchestrators/Result-huge-number/result-huge-number", code: 202},
		hostileCase{name: "loop into its max", method: "POST", path: df + "/orchestrators/Spin/spin", code: 202},
		hostileCase{name: "loop growing a variable", method: "POST", path: df + "/orchestrators/Grow/grow", code: 202},
		hostileCase{name: "loop of 10^10 iterations", method: "POST", path: df + "/orchestrators/Forever/forever", code: 202},
		hostileCase{name: "oversized custom status", method: "POST", path: df + "/orchestrators/BigStatus/big-status", code: 202},
		hostileCase{name: "oversized custom status from input", method: "POST", path: df + "/orchestrators/BigStatusFromInput/big-status-input", ctype: "application/json", body: []byte(`"` + strings.Repeat("é", 9000) + `"`), code: 202},
	)

	for _, hc := range cases {
		r, err := send(c, hc)
		switch {
		case err != nil:
			t.Errorf("%s: %v", hc.name, err)
		case r.code != hc.code:
			t.Errorf("%s: %v, want %d", hc.name, r, hc.code)
		case hc.code >= 400 && hc.code != 431 && r.errorCode() == "":
			t.Errorf("%s: %v is not a JSON {error, message}", hc.name, r)
		case hc.errCode != "" && r.errorCode() != hc.errCode:
			t.Errorf("%s: error %q, want %q: %v", hc.name, r.errorCode(), hc.errCode, r)
		}
		if !p.alive() {
			t.Fatalf("cairn exited after %q: %v\n%s", hc.name, p.err, book)
		}
	}

	// The instances that were accepted fail alone, each with a clear error.
	failed := map[string]string{
		"result-deep":        "InvalidResult",
		"result-huge-number": "InvalidResult",
		"spin":               "LoopLimitExceeded",
		"grow":               "VariablesTooLarge",
		"big-status":         "CustomStatusError",
		"big-status-input":   "CustomStatusError",
	}
	for _, b := range expressionBombs {
		failed["bomb-"+b.name] = "ExpressionError"
	}
	for id, typ := range failed {
		st, err := c.waitDone(id)
		if err != nil {
			for _, l := range strings.Split(book.String(), "\n") {
				if strings.Contains(l, "ERROR") {
					t.Log(l[:min(len(l), 600)])
				}
			}
			t.Fatal(err)
		}
		if st.RuntimeStatus != "Failed" || !strings.Contains(string(st.Output), `"`+typ+`"`) {
			t.Errorf("%s: %s %s, want Failed with %s", id, st.RuntimeStatus, st.Output, typ)
		} else if strings.HasPrefix(id, "bomb-") {
			// Which limit stopped it, for the reader of -v.
			var out struct{ Message string }
			_ = json.Unmarshal(st.Output, &out)
			msg := out.Message
			if i := strings.LastIndex(msg, `": `); i >= 0 {
				msg = msg[i+3:]
			}
			t.Logf("%s: %.110s", id, msg)
		}
	}
	if st, err := c.waitDone("deep-256"); err != nil || st.RuntimeStatus != "Completed" || !jsonEqual(st.Output, deep(256)) {
		t.Errorf("deep-256: %+v %v", st, err)
	}
	peak := peakRSS(p)
	t.Logf("peak memory of cairn after %d expression bombs: %d MiB", len(expressionBombs), peak>>20)
	ceiling := int64(memoryCeiling)
	if raceEnabled {
		ceiling *= 3 // the race detector's shadow memory
	}
	if peak > ceiling {
		t.Errorf("cairn grew to %d MiB evaluating expressions, over %d MiB", peak>>20, ceiling>>20)
	}

	// The endless loop still runs, yet everything above got through; the
	// client stops it.
	if st, err := c.statusOf("forever"); err != nil || st.RuntimeStatus != "Running" {
		t.Errorf("forever: %v %v", st, err)
	}
	if r := c.must(t, "POST", df+"/instances/forever/terminate?reason=enough", "", nil); r.code != 202 {
		t.Errorf("terminate forever: %v", r)
	}
	if st, err := c.waitDone("forever"); err != nil || st.RuntimeStatus != "Terminated" {
		t.Errorf("forever: %v %v", st, err)
	} else {
		t.Logf("the 10^10-iteration loop was at revision %d when terminated", st.Revision)
	}

	// The server is up and the others are untouched.
	if r := c.must(t, "GET", "/healthz", "", nil); r.code != 200 {
		t.Errorf("healthz: %v", r)
	}
	if r := c.must(t, "POST", df+"/instances/canary/raiseEvent/Go", "application/json", []byte(`{"still":"fine"}`)); r.code != 202 {
		t.Fatalf("canary event: %v", r)
	}
	st, err := c.waitDone("canary")
	if err != nil || st.RuntimeStatus != "Completed" || !jsonEqual(st.Output, []byte(`{"still":"fine"}`)) || !jsonEqual(st.CustomStatus, []byte(`{"alive":true}`)) {
		t.Errorf("canary: %+v %v", st, err)
	}
	if msg := historyProblem(st.History, map[string]int{"EventRaised": 1}); msg != "" {
		t.Errorf("canary: %s", msg)
	}
	// keep got one accepted deep event (buffered) and nothing else.
	if r := c.must(t, "POST", df+"/instances/keep/raiseEvent/Done", "application/json", nil); r.code != 202 {
		t.Fatalf("keep event: %v", r)
	}
	st, err = c.waitDone("keep")
	if err != nil || st.RuntimeStatus != "Completed" {
		t.Errorf("keep: %+v %v", st, err)
	} else if msg := historyProblem(st.History, map[string]int{"EventRaised": 2}); msg != "" {
		t.Errorf("keep: %s%s", msg, historyText(st.History))
	}
	if !p.alive() {
		t.Fatalf("cairn exited: %v", p.err)
	}
	book.check(t)
	t.Logf("hostile input: %d requests sent (%d expression bombs deployed and run), server up throughout, canary unaffected", len(cases), len(expressionBombs))
}

// send makes one hostile request, raw enough to send what a client
// library would refuse to.
func send(c *client, hc hostileCase) (reply, error) {
	req, err := http.NewRequest(hc.method, c.base+"/", nil)
	if err != nil {
		return reply{}, err
	}
	// The path goes as is: no normalising of escapes or dot segments.
	req.URL.Opaque = hc.path
	if i := strings.IndexByte(hc.path, '?'); i >= 0 {
		req.URL.Opaque, req.URL.RawQuery = hc.path[:i], hc.path[i+1:]
	}
	if hc.body != nil {
		req.Body = io.NopCloser(bytes.NewReader(hc.body))
		if !hc.chunked {
			req.ContentLength = int64(len(hc.body))
		} else {
			req.ContentLength = -1
		}
	}
	if hc.ctype != "" {
		req.Header.Set("Content-Type", hc.ctype)
	}
	for i := 0; i+1 < len(hc.headers); i += 2 {
		req.Header[hc.headers[i]] = []string{hc.headers[i+1]}
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, b}, err
}

// billionLaughs is a YAML document of 10 aliases of 10 aliases of ...: a
// few hundred bytes that expand to 10^9 strings.
func billionLaughs() []byte {
	var sb strings.Builder
	sb.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 8; i++ {
		p := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&sb, "a%d: &a%d [%s]\n", i, i, strings.Repeat(p+", ", 9)+p)
	}
	sb.WriteString("name: Bomb\nsteps:\n  - return: *a8\n")
	return []byte(sb.String())
}

// peakRSS is the process's peak resident memory (Linux), 0 when unknown.
func peakRSS(p *proc) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
