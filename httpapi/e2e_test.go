package httpapi_test

// End-to-end tests: a real redis-server, the real store, the engine and the
// API over real HTTP.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

var _ httpapi.Backend = (*redisstore.Store)(nil)

const df = "/runtime/webhooks/durabletask"

// waitLimit bounds every wait for the engine; it is a guard against a hung
// test, never an assertion about speed.
const waitLimit = 30 * time.Second

type env struct {
	t      *testing.T
	redis  *redistest.Server
	rdb    *redis.Client
	store  *redisstore.Store
	cat    *interpreter.Catalog
	api    *httptest.Server
	engine sync.Once
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, redistest.StartOpts{}, nil)
}

// newEnvWith is newEnv with redis-server options and a Config edit.
func newEnvWith(t *testing.T, opts redistest.StartOpts, edit func(*httpapi.Config)) *env {
	t.Helper()
	return newEnvClient(t, opts, servedClient, edit)
}

// servedClient returns a client with the options `cairn serve` gives its
// own (serve.go, redisOptions), so the tests run what runs: RESP2, a
// client that honours context deadlines (as the Backend contract asks),
// and a pool for 64 connections.
func servedClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		Protocol:              2,
		DisableIdentity:       true,
		ContextTimeoutEnabled: true,
		PoolSize:              128,
	})
}

// defaultClient is go-redis with its defaults (RESP3, context deadlines
// not honoured), as a program embedding the store may build it: its calls
// are bounded by the client's own timeouts, not by StoreTimeout.
func defaultClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr})
}

// newEnvClient is newEnvWith with the store client built by client.
func newEnvClient(t *testing.T, opts redistest.StartOpts, client func(addr string) *redis.Client, edit func(*httpapi.Config)) *env {
	t.Helper()
	e := &env{t: t, redis: redistest.StartWith(t, opts)}
	e.rdb = client(e.redis.Addr())
	t.Cleanup(func() { _ = e.rdb.Close() })
	e.store = redisstore.New(e.rdb, redisstore.Options{Partitions: 4})
	if err := e.store.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.cat = interpreter.NewCatalog(e.store)
	cfg := httpapi.Config{Backend: e.store, Catalog: e.cat}
	if edit != nil {
		edit(&cfg)
	}
	e.api = httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(e.api.Close)
	return e
}

// startEngine runs the engine (and the in-process activity runtime) until
// the test ends.
func (e *env) startEngine() {
	e.engine.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		eng := interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{})
		wg.Add(1)
		go func() { defer wg.Done(); _ = eng.Run(ctx) }()
		startActivities(ctx, &wg, e)
		e.t.Cleanup(func() { cancel(); wg.Wait() })
	})
}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object: %s", r.body)
	}
	return m
}

func (e *env) do(method, path, contentType string, body []byte) resp {
	e.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.api.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// expect checks the status code of r.
func (e *env) expect(r resp, code int, what string) resp {
	e.t.Helper()
	if r.code != code {
		e.t.Fatalf("%s: %d %s, want %d", what, r.code, r.body, code)
	}
	return r
}

// deploy PUTs a workflow file from workflows/ or an inline YAML.
func (e *env) deploy(name, yaml string) resp {
	e.t.Helper()
	return e.do("PUT", "/v1/workflows/"+name, "application/yaml", []byte(yaml))
}

func readWorkflow(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "workflows", file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sse reads a status stream.
type sse struct {
	t    *testing.T
	body io.ReadCloser
	sc   *bufio.Scanner
}

type statusEvent struct {
	InstanceID    string          `json:"instanceId"`
	RuntimeStatus string          `json:"runtimeStatus"`
	CustomStatus  json.RawMessage `json:"customStatus"`
	Output        json.RawMessage `json:"output"`
	Revision      int64           `json:"revision"`
}

func (e *env) events(id string) *sse {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.api.URL+"/v1/instances/"+id+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(res.Body)
		cancel()
		e.t.Fatalf("events: %d %s", res.StatusCode, b)
	}
	e.t.Cleanup(func() { cancel(); res.Body.Close() })
	return &sse{t: e.t, body: res.Body, sc: bufio.NewScanner(res.Body)}
}

// next returns the next status event, or ok=false when the stream ended.
func (s *sse) next() (statusEvent, bool) {
	s.t.Helper()
	var name, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if name == "status" {
				var ev statusEvent
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					s.t.Fatalf("bad event data %q: %v", data, err)
				}
				return ev, true
			}
			name, data = "", ""
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
	return statusEvent{}, false
}

// until reads events until one satisfies ok.
func (s *sse) until(what string, ok func(statusEvent) bool) statusEvent {
	s.t.Helper()
	for {
		ev, more := s.next()
		if !more {
			s.t.Fatalf("stream ended before %s", what)
		}
		if ok(ev) {
			return ev
		}
	}
}

func TestReserveTicket(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	src := readWorkflow(t, "reserve-ticket.yaml")
	r := e.expect(e.deploy("ReserveTicket", src), 201, "first deploy")
	hash := r.json(t)["hash"].(string)
	e.expect(e.deploy("ReserveTicket", src), 200, "same content again")

	// Start: 202 + payload + Location.
	r = e.expect(e.do("POST", df+"/orchestrators/ReserveTicket/ticket-1", "application/json", []byte(`"user-42"`)), 202, "start")
	p := r.json(t)
	if p["id"] != "ticket-1" || r.header.Get("Location") != p["statusQueryGetUri"] || r.header.Get("Retry-After") == "" {
		t.Fatalf("start payload/headers: %v %v", p, r.header)
	}
	for _, f := range []string{"statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"} {
		if u, _ := p[f].(string); !strings.HasPrefix(u, e.api.URL+df+"/instances/ticket-1") {
			t.Errorf("%s = %q", f, p[f])
		}
	}

	// Wait (through the stream) for the offer, then read the status.
	s := e.events("ticket-1")
	s.until("the offer", func(ev statusEvent) bool { return strings.Contains(string(ev.CustomStatus), "discount") })
	r = e.expect(e.do("GET", df+"/instances/ticket-1", "", nil), 202, "status while waiting")
	st := r.json(t)
	cs, _ := st["customStatus"].(map[string]any)
	if cs["discountTimeout"] != 60.0 || cs["bookingUrl"] != "https://example.com/book/user-42" {
		t.Fatalf("customStatus = %v", st["customStatus"])
	}
	if _, ok := cs["discount"].(float64); !ok {
		t.Fatalf("discount = %v", cs["discount"])
	}
	if st["runtimeStatus"] != "Running" || st["input"] != "user-42" || st["output"] != nil || st["definitionHash"] != hash {
		t.Fatalf("status = %s", r.body)
	}
	w, _ := st["waitingFor"].(map[string]any)
	if w["kind"] != "event" || w["event"] != "BookingConfirmed" || w["until"] == nil || st["currentStep"] != "confirmation" {
		t.Fatalf("waitingFor = %v, currentStep = %v", st["waitingFor"], st["currentStep"])
	}
	if r.header.Get("Location") == "" || r.header.Get("Retry-After") != "5" {
		t.Fatalf("202 headers: %v", r.header)
	}

	// Confirm.
	e.expect(e.do("POST", df+"/instances/ticket-1/raiseEvent/BookingConfirmed", "application/json", []byte("true")), 202, "raiseEvent")
	last := s.until("completion", func(ev statusEvent) bool { return ev.RuntimeStatus == "Completed" })
	if _, more := s.next(); more {
		t.Errorf("the stream goes on after completion")
	}
	if string(last.Output) != "true" {
		t.Errorf("stream output = %s", last.Output)
	}
	r = e.expect(e.do("GET", df+"/instances/ticket-1?showHistory=true&showHistoryOutput=true", "", nil), 200, "status when done")
	st = r.json(t)
	if st["runtimeStatus"] != "Completed" || st["output"] != true {
		t.Fatalf("final status = %s", r.body)
	}
	if cs, _ := st["customStatus"].(map[string]any); cs["message"] != "Thank you for confirming your booking." {
		t.Fatalf("final customStatus = %v", st["customStatus"])
	}
	hist, _ := st["historyEvents"].([]any)
	var types []string
	for _, h := range hist {
		types = append(types, h.(map[string]any)["EventType"].(string))
	}
	if len(types) == 0 || types[len(types)-1] != "ExecutionCompleted" || !strings.Contains(strings.Join(types, ","), "EventRaised") {
		t.Errorf("history = %v", types)
	}

	// A finished instance refuses messages with 410.
	e.expect(e.do("POST", df+"/instances/ticket-1/raiseEvent/BookingConfirmed", "application/json", []byte("true")), 410, "raiseEvent when done")
	for _, op := range []string{"terminate", "suspend", "resume"} {
		e.expect(e.do("POST", df+"/instances/ticket-1/"+op+"?reason=late", "", nil), 410, op+" when done")
	}
}

// TestStatusCodes exercises every status code of the DF table against the
// real store.
func TestStatusCodes(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Echo", "name: Echo\nsteps:\n  - return: ${ input }\n"), 201, "deploy Echo")
	e.expect(e.deploy("Gate", "name: Gate\nsteps:\n  - setStatus: waiting\n  - wait: {event: Open, result: v}\n  - return: ${ v }\n"), 201, "deploy Gate")
	e.expect(e.deploy("Boom", "name: Boom\nsteps:\n  - fail: {error: Nope, message: it broke}\n"), 201, "deploy Boom")

	// 404 unknown workflow, naming it.
	r := e.expect(e.do("POST", df+"/orchestrators/Nope", "", nil), 404, "unknown workflow")
	if !strings.Contains(r.json(t)["message"].(string), `"Nope"`) {
		t.Errorf("404 does not name the workflow: %s", r.body)
	}
	// 400 bad id.
	e.expect(e.do("POST", df+"/orchestrators/Echo/@x", "", nil), 400, "bad id")

	// Start-and-wait: 200 + output.
	r = e.expect(e.do("POST", df+"/orchestrators/Echo/echo-1?timeout=20&pollingInterval=1", "application/json", []byte(`{"a":[1,2]}`)), 200, "start and wait")
	if string(r.body) != `{"a":[1,2]}` {
		t.Errorf("start-and-wait output = %s", r.body)
	}
	// Start-and-wait, not done in time: the 202 payload.
	r = e.expect(e.do("POST", df+"/orchestrators/Gate/gate-1?timeout=0.3&pollingInterval=0.1", "", nil), 202, "start and wait, not done")
	if r.json(t)["id"] != "gate-1" || r.header.Get("Location") == "" {
		t.Errorf("202 payload: %s", r.body)
	}
	// 409: the id is running.
	e.expect(e.do("POST", df+"/orchestrators/Gate/gate-1", "", nil), 409, "start a running id")
	// 409: purge of a running instance.
	e.expect(e.do("DELETE", df+"/instances/gate-1", "", nil), 409, "purge running")

	// Failed: 200, or 500 on opt-in; start-and-wait gives the status payload.
	r = e.expect(e.do("POST", df+"/orchestrators/Boom/boom-1?timeout=20&pollingInterval=1", "", nil), 200, "start and wait, failed")
	if m := r.json(t); m["runtimeStatus"] != "Failed" || m["output"] == nil {
		t.Errorf("failed start-and-wait: %s", r.body)
	}
	r = e.expect(e.do("GET", df+"/instances/boom-1", "", nil), 200, "failed status")
	if !strings.Contains(string(r.body), "it broke") {
		t.Errorf("failed output: %s", r.body)
	}
	e.expect(e.do("GET", df+"/instances/boom-1?returnInternalServerErrorOnFailure=true", "", nil), 500, "failed status, opt-in")

	// 404 for every instance call on an unknown id.
	e.expect(e.do("GET", df+"/instances/ghost", "", nil), 404, "status unknown")
	e.expect(e.do("POST", df+"/instances/ghost/raiseEvent/Open", "application/json", []byte("1")), 404, "raise unknown")
	for _, op := range []string{"terminate", "suspend", "resume", "restart"} {
		e.expect(e.do("POST", df+"/instances/ghost/"+op, "", nil), 404, op+" unknown")
	}
	e.expect(e.do("DELETE", df+"/instances/ghost", "", nil), 404, "purge unknown")

	// Suspend, resume, terminate: 202 each, applied in order.
	e.expect(e.do("POST", df+"/orchestrators/Gate/gate-2", "", nil), 202, "start gate-2")
	s := e.events("gate-2")
	s.until("waiting", func(ev statusEvent) bool { return ev.RuntimeStatus == "Running" })
	e.expect(e.do("POST", df+"/instances/gate-2/suspend?reason=pause", "", nil), 202, "suspend")
	s.until("suspended", func(ev statusEvent) bool { return ev.RuntimeStatus == "Suspended" })
	e.expect(e.do("GET", df+"/instances/gate-2", "", nil), 202, "suspended status")
	e.expect(e.do("POST", df+"/instances/gate-2/resume?reason=go", "", nil), 202, "resume")
	s.until("resumed", func(ev statusEvent) bool { return ev.RuntimeStatus == "Running" })
	e.expect(e.do("POST", df+"/instances/gate-2/terminate?reason=enough", "", nil), 202, "terminate")
	s.until("terminated", func(ev statusEvent) bool { return ev.RuntimeStatus == "Terminated" })
	r = e.expect(e.do("GET", df+"/instances/gate-2", "", nil), 200, "terminated status")
	if !strings.Contains(string(r.body), "enough") {
		t.Errorf("terminated output should hold the reason: %s", r.body)
	}
	e.expect(e.do("POST", df+"/instances/gate-2/terminate", "", nil), 410, "terminate twice")

	// Restart: 202 + payload of a new instance; with the same id once finished.
	r = e.expect(e.do("POST", df+"/instances/echo-1/restart", "", nil), 202, "restart")
	newID := r.json(t)["id"].(string)
	if newID == "echo-1" || newID == "" {
		t.Errorf("restart id = %q", newID)
	}
	r = e.expect(e.do("POST", df+"/instances/echo-1/restart?restartWithNewInstanceId=false&timeout=20", "", nil), 200, "restart same id and wait")
	if string(r.body) != `{"a":[1,2]}` {
		t.Errorf("restart kept the input? output = %s", r.body)
	}
	e.expect(e.do("POST", df+"/instances/gate-1/restart?restartWithNewInstanceId=false", "", nil), 409, "restart a running id in place")

	// Purge one: 200 then 404.
	r = e.expect(e.do("DELETE", df+"/instances/boom-1", "", nil), 200, "purge")
	if string(r.body) != `{"instancesDeleted":1}` {
		t.Errorf("purge body: %s", r.body)
	}
	e.expect(e.do("GET", df+"/instances/boom-1", "", nil), 404, "status after purge")
	// Purge many: 400 without from, 200 with N, then 404.
	e.expect(e.do("DELETE", df+"/instances", "", nil), 400, "purge many without createdTimeFrom")
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	r = e.expect(e.do("DELETE", df+"/instances?createdTimeFrom="+from+"&runtimeStatus=Terminated", "", nil), 200, "purge many")
	if string(r.body) != `{"instancesDeleted":1}` {
		t.Errorf("purge many: %s", r.body)
	}
	e.expect(e.do("DELETE", df+"/instances?createdTimeFrom="+from+"&runtimeStatus=Terminated", "", nil), 404, "purge many, none left")

	// 413 on a real instance.
	big := append(append([]byte(`"`), bytes.Repeat([]byte("x"), httpapi.DefaultMaxBodyBytes)...), '"')
	e.expect(e.do("POST", df+"/instances/gate-1/raiseEvent/Open", "application/json", big), 413, "raise too large")
	e.expect(e.do("POST", df+"/orchestrators/Echo", "application/json", big), 413, "start too large")

	// Health.
	e.expect(e.do("GET", "/healthz", "", nil), 200, "healthz")
	e.expect(e.do("GET", "/readyz", "", nil), 200, "readyz")
}

func TestWorkflowsEndpoints(t *testing.T) {
	e := newEnv(t)
	v1 := "name: Hello\nsteps:\n  - return: 1\n"
	v2 := "name: Hello\nsteps:\n  - return: 2\n"
	r := e.expect(e.deploy("Hello", v1), 201, "new workflow")
	h1 := r.json(t)["hash"].(string)
	if r.header.Get("Location") == "" {
		t.Errorf("201 without Location")
	}
	r = e.expect(e.do("PUT", "/v1/workflows/Hello", "text/yaml; charset=utf-8", []byte(v2)), 200, "new version")
	h2 := r.json(t)["hash"].(string)
	if h1 == h2 {
		t.Fatal("new content, same hash")
	}
	r = e.expect(e.do("GET", "/v1/workflows/Hello", "", nil), 200, "get")
	m := r.json(t)
	if m["hash"] != h2 || m["source"] != v2 || len(m["versions"].([]any)) != 2 {
		t.Errorf("get: %s", r.body)
	}
	r = e.expect(e.do("GET", "/v1/workflows/Hello?hash="+h1, "", nil), 200, "get old version")
	if r.json(t)["source"] != v1 {
		t.Errorf("old version: %s", r.body)
	}
	e.expect(e.do("GET", "/v1/workflows/Hello?hash=nope", "", nil), 404, "unknown version")
	e.expect(e.do("GET", "/v1/workflows/Nope", "", nil), 404, "unknown workflow")
	r = e.expect(e.do("GET", "/v1/workflows", "", nil), 200, "list")
	if !strings.Contains(string(r.body), `"name":"Hello"`) {
		t.Errorf("list: %s", r.body)
	}

	// Lint errors: 422 with every located problem; nothing deployed.
	bad := "name: Hello\nsteps:\n  - swtich: []\n  - return: ${ nosuch + }\n"
	r = e.expect(e.deploy("Hello", bad), 422, "invalid definition")
	var body struct {
		Error  string `json:"error"`
		Issues []struct {
			Pos     struct{ Line, Col int } `json:"pos"`
			Message string                  `json:"message"`
		} `json:"issues"`
	}
	_ = json.Unmarshal(r.body, &body)
	if body.Error != "invalid-workflow" || len(body.Issues) < 2 || body.Issues[0].Pos.Line == 0 {
		t.Errorf("422 body: %s", r.body)
	}
	r = e.expect(e.do("GET", "/v1/workflows/Hello", "", nil), 200, "get after refused deploy")
	if r.json(t)["hash"] != h2 {
		t.Errorf("a refused definition was deployed")
	}
	e.expect(e.deploy("Other", v1), 400, "name mismatch")
	e.expect(e.do("PUT", "/v1/workflows/Hello", "application/json", []byte(v1)), 415, "not YAML")

	// Validate: 200 valid, 422 invalid; nothing deployed.
	r = e.expect(e.do("POST", "/v1/validate", "application/yaml", []byte("name: Fresh\nsteps:\n  - return: 1\n")), 200, "validate valid")
	if r.json(t)["valid"] != true {
		t.Errorf("validate: %s", r.body)
	}
	e.expect(e.do("POST", "/v1/validate?filename=x.yaml", "application/yaml", []byte(bad)), 422, "validate invalid")
	e.expect(e.do("GET", "/v1/workflows/Fresh", "", nil), 404, "validate does not deploy")

	// Running instances keep their version.
	e.expect(e.deploy("Gate", "name: Gate\nsteps:\n  - wait: {event: Open}\n  - return: old\n"), 201, "Gate v1")
	r = e.expect(e.do("POST", df+"/orchestrators/Gate/g1", "", nil), 202, "start on v1")
	e.expect(e.deploy("Gate", "name: Gate\nsteps:\n  - wait: {event: Open}\n  - return: new\n"), 200, "Gate v2")
	e.startEngine()
	e.expect(e.do("POST", df+"/instances/g1/raiseEvent/Open", "application/json", nil), 202, "open")
	s := e.events("g1")
	if ev := s.until("completion", func(ev statusEvent) bool { return ev.RuntimeStatus == "Completed" }); string(ev.Output) != `"old"` {
		t.Errorf("the running instance changed version: output %s", ev.Output)
	}
	r = e.expect(e.do("POST", df+"/orchestrators/Gate/g2?timeout=0.1", "", nil), 202, "start on v2")
	e.expect(e.do("POST", df+"/instances/g2/raiseEvent/Open", "application/json", nil), 202, "open g2")
	if ev := e.events("g2").until("completion", func(ev statusEvent) bool { return ev.RuntimeStatus == "Completed" }); string(ev.Output) != `"new"` {
		t.Errorf("a new instance did not take the new version: output %s", ev.Output)
	}
}

// TestListPaging starts 1,000 instances and pages through them 100 at a
// time: every instance is seen exactly once.
func TestListPaging(t *testing.T) {
	e := newEnv(t)
	e.expect(e.deploy("Gate", "name: Gate\nsteps:\n  - wait: {event: Open}\n"), 201, "deploy")
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				res, err := http.Post(e.api.URL+df+fmt.Sprintf("/orchestrators/Gate/inst-%04d", i), "application/json", nil)
				if err != nil {
					errs <- err.Error()
					continue
				}
				res.Body.Close()
				if res.StatusCode != 202 {
					errs <- fmt.Sprintf("start %d: %d", i, res.StatusCode)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}

	page := func(query, token string) ([]map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.api.URL+df+"/instances"+query, nil)
		if token != "" {
			req.Header.Set("x-ms-continuation-token", token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("list %s: %d %s", query, res.StatusCode, b)
		}
		var items []map[string]any
		if err := json.Unmarshal(b, &items); err != nil {
			t.Fatalf("list: %s", b)
		}
		return items, res.Header.Get("x-ms-continuation-token")
	}
	all := func(query string) []string {
		var ids []string
		token := ""
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatal("paging does not end")
			}
			items, next := page(query, token)
			if len(items) > 100 {
				t.Fatalf("page of %d > top", len(items))
			}
			for _, it := range items {
				ids = append(ids, it["instanceId"].(string))
			}
			if next == "" {
				return ids
			}
			token = next
		}
	}
	ids := all("?top=100")
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprintf("inst-%04d", i)]; c != 1 {
			t.Errorf("inst-%04d seen %d times", i, c)
		}
	}
	if len(ids) != n {
		t.Errorf("listed %d, want %d", len(ids), n)
	}
	// A token of "null" (what some DF clients echo for "none") is the first page.
	if items, _ := page("?top=100", "null"); len(items) != 100 || items[0]["instanceId"] != ids[0] {
		t.Errorf("token null: %d items", len(items))
	}
	// Filters.
	if got := len(all("?top=100&runtimeStatus=Pending,Running")); got != n {
		t.Errorf("Pending,Running: %d", got)
	}
	if got := len(all("?top=100&runtimeStatus=Completed")); got != 0 {
		t.Errorf("Completed: %d", got)
	}
	if got := all("?top=7&instanceIdPrefix=inst-00"); len(got) != 100 {
		t.Errorf("prefix inst-00: %d", len(got))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := len(all("?createdTimeFrom=" + future)); got != 0 {
		t.Errorf("created in the future: %d", got)
	}
	if got := len(all("?createdTimeTo=" + future + "&showInput=false")); got != n {
		t.Errorf("created before the future: %d", got)
	}
}

// TestStreamStages: the SSE stream delivers each custom status of a
// multi-stage workflow, in order, then ends.
func TestStreamStages(t *testing.T) {
	e := newEnv(t)
	e.expect(e.deploy("Trip", `name: Trip
steps:
  - setStatus: Tokyo
  - wait: {duration: 10ms}
  - setStatus: Seattle
  - wait: {duration: 10ms}
  - setStatus: London
  - wait: {duration: 10ms}
  - return: done
`), 201, "deploy")
	e.expect(e.do("POST", df+"/orchestrators/Trip/trip-1", "", nil), 202, "start")
	// Connect before the engine runs, so every stage happens while we watch.
	s := e.events("trip-1")
	first, _ := s.next()
	if first.RuntimeStatus != "Pending" || string(first.CustomStatus) != "null" {
		t.Fatalf("first event = %+v", first)
	}
	e.startEngine()
	var stages []string
	var lastRev int64 = first.Revision
	for {
		ev, more := s.next()
		if !more {
			break
		}
		if ev.Revision <= lastRev {
			t.Errorf("revision went from %d to %d", lastRev, ev.Revision)
		}
		lastRev = ev.Revision
		var st string
		_ = json.Unmarshal(ev.CustomStatus, &st)
		if len(stages) == 0 || stages[len(stages)-1] != st {
			stages = append(stages, st)
		}
		if ev.RuntimeStatus == "Completed" {
			if string(ev.Output) != `"done"` {
				t.Errorf("output = %s", ev.Output)
			}
			break
		}
	}
	if want := []string{"Tokyo", "Seattle", "London"}; !reflect.DeepEqual(stages, want) {
		t.Errorf("stages = %v, want %v", stages, want)
	}
	// A finished instance: the stream sends the final status and ends.
	s = e.events("trip-1")
	if ev, _ := s.next(); ev.RuntimeStatus != "Completed" {
		t.Errorf("stream of a finished instance: %+v", ev)
	}
	if _, more := s.next(); more {
		t.Errorf("the stream of a finished instance goes on")
	}
	e.expect(e.do("GET", "/v1/instances/nobody/events", "", nil), 404, "stream of an unknown instance")
}

// TestStartAndWaitSubscribes: waiting for an instance does not poll Redis
// in a tight loop, whatever pollingInterval says.
func TestStartAndWaitSubscribes(t *testing.T) {
	e := newEnv(t)
	e.expect(e.deploy("Gate", "name: Gate\nsteps:\n  - wait: {event: Open}\n"), 201, "deploy")
	ctx := context.Background()
	if err := e.rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("POST", df+"/orchestrators/Gate/slow?timeout=2&pollingInterval=0.001", "", nil), 202, "start and wait")
	info, err := e.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Every command Redis ran since the reset, whatever its kind.
	var total int
	for _, line := range strings.Split(info, "\n") {
		if name, rest, ok := strings.Cut(line, ":calls="); ok && strings.HasPrefix(name, "cmdstat_") {
			var n int
			_, _ = fmt.Sscanf(rest, "%d", &n)
			total += n
		}
	}
	// The start, the subscription, a re-read per second and the final
	// read: a few dozen at most, nowhere near the 2,000 a 1 ms polling loop
	// would make.
	if total > 50 {
		t.Errorf("Redis ran %d commands during a 2 s start-and-wait:\n%s", total, info)
	}
}

func TestReadyzWithoutRedis(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("GET", "/readyz", "", nil), 200, "readyz up")
	e.redis.Stop()
	r := e.expect(e.do("GET", "/readyz", "", nil), 503, "readyz down")
	if r.json(t)["error"] != "not-ready" {
		t.Errorf("readyz body: %s", r.body)
	}
	e.expect(e.do("GET", "/healthz", "", nil), 200, "healthz without Redis")
}

// startActivities runs the workflows' expr-bound activities in process: a
// stand-in for the activity runtime, reading the store's local task queue.
func startActivities(ctx context.Context, wg *sync.WaitGroup, e *env) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			tasks, err := e.store.ReadTasks(ctx, "httpapi-test", interpreter.LocalQueue, 16, 200*time.Millisecond)
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			for _, tk := range tasks {
				sc := tk.Schedule
				def, err := e.cat.Get(ctx, sc.Workflow, sc.DefHash)
				if err != nil {
					_ = e.store.FailTask(ctx, tk.Ref, interpreter.ErrorInfo{Type: "NoDefinition", Message: err.Error()}, time.Now())
					continue
				}
				opts := def.Activities[sc.Activity]
				if opts == nil || opts.Binding == nil || opts.Binding.Kind != dsl.BindExpr {
					_ = e.store.FailTask(ctx, tk.Ref, interpreter.ErrorInfo{Type: "NoBinding", Message: sc.Activity}, time.Now())
					continue
				}
				var in any
				_ = json.Unmarshal(sc.Input, &in)
				out, err := opts.Binding.Expr.Eval(&dsl.Env{Input: in})
				if err != nil {
					_ = e.store.FailTask(ctx, tk.Ref, interpreter.ErrorInfo{Type: "ActivityFailed", Message: err.Error()}, time.Now())
					continue
				}
				b, _ := json.Marshal(out)
				_ = e.store.CompleteTask(ctx, tk.Ref, b, time.Now())
			}
		}
	}()
}

// TestStoreDown stops Redis under a running API: every route that needs the
// store answers 503 with a JSON error at once (no hang, no 500), /healthz
// stays 200, and the API recovers by itself when Redis is back. A paused
// Redis (CLIENT PAUSE: it accepts connections but answers nothing) gets 503
// "timeout" after StoreTimeout.
func TestStoreDown(t *testing.T) {
	for _, c := range []struct {
		name   string
		client func(string) *redis.Client
		// paused: the client honours deadlines, so a paused Redis is
		// bounded by StoreTimeout; the default client waits out its own
		// ReadTimeout (3 s, past the pause) instead.
		paused bool
	}{
		{"served", servedClient, true},
		{"default", defaultClient, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvClient(t, redistest.StartOpts{AOF: true}, c.client, func(c *httpapi.Config) { c.StoreTimeout = 300 * time.Millisecond })
			testStoreDown(t, e, c.paused)
		})
	}
}

func testStoreDown(t *testing.T, e *env, paused bool) {
	e.expect(e.deploy("ReserveTicket", readWorkflow(t, "reserve-ticket.yaml")), 201, "deploy")
	e.expect(e.do("POST", df+"/orchestrators/ReserveTicket/down-1", "application/json", []byte(`"u"`)), 202, "start")

	routes := []struct{ method, path, ctype, body string }{
		{"POST", df + "/orchestrators/ReserveTicket/down-2", "application/json", `"u"`},
		{"POST", df + "/orchestrators/ReserveTicket/down-3?timeout=5", "application/json", `"u"`},
		{"GET", df + "/instances/down-1?showHistory=true", "", ""},
		{"GET", df + "/instances", "", ""},
		{"POST", df + "/instances/down-1/raiseEvent/BookingConfirmed", "application/json", "true"},
		{"POST", df + "/instances/down-1/terminate", "", ""},
		{"POST", df + "/instances/down-1/suspend", "", ""},
		{"POST", df + "/instances/down-1/restart", "", ""},
		{"DELETE", df + "/instances/down-1", "", ""},
		{"DELETE", df + "/instances?createdTimeFrom=2020-01-01T00:00:00Z", "", ""},
		{"GET", "/v1/workflows", "", ""},
		{"GET", "/v1/workflows/ReserveTicket", "", ""},
		{"PUT", "/v1/workflows/ReserveTicket", "application/yaml", readWorkflow(t, "reserve-ticket.yaml")},
		{"GET", "/v1/instances/down-1/events", "", ""},
	}
	// A stopped Redis refuses connections: the store client retries its
	// dials for a while, so the answer is "unavailable" when it gives up
	// within StoreTimeout and "timeout" when it does not.
	check := func(phase string, want ...string) {
		t.Helper()
		// All at once: each waits for the store client to give up.
		answers := make([]resp, len(routes))
		var wg sync.WaitGroup
		for i, r := range routes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(r.method, e.api.URL+r.path, strings.NewReader(r.body))
				if r.ctype != "" {
					req.Header.Set("Content-Type", r.ctype)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					answers[i] = resp{body: []byte(err.Error())}
					return
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				answers[i] = resp{res.StatusCode, res.Header, b}
			}()
		}
		wg.Wait()
		for i, r := range routes {
			got := answers[i]
			var m map[string]any
			_ = json.Unmarshal(got.body, &m)
			if got.code != 503 || !slices.Contains(want, fmt.Sprint(m["error"])) || m["message"] == "" || got.header.Get("Retry-After") == "" {
				t.Errorf("%s: %s %s: %d %s, want 503 %q", phase, r.method, r.path, got.code, got.body, want)
			}
			if strings.Contains(string(got.body), e.redis.Addr()) {
				t.Errorf("%s: the error names the Redis address: %s", phase, got.body)
			}
		}
		if r := e.do("GET", "/readyz", "", nil); r.code != 503 || r.json(t)["error"] != "not-ready" {
			t.Errorf("%s: readyz %d %s", phase, r.code, r.body)
		}
		e.expect(e.do("GET", "/healthz", "", nil), 200, phase+": healthz")
	}

	e.redis.Stop()
	check("redis stopped", "unavailable", "timeout")
	e.redis.Restart(t)
	// No reconnect call: the next requests find Redis again by themselves.
	deadline := time.Now().Add(waitLimit)
	for {
		r := e.do("GET", df+"/instances/down-1", "", nil)
		if r.code == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API did not recover after Redis came back: %d %s", r.code, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.expect(e.do("GET", "/readyz", "", nil), 200, "readyz after restart")
	if !paused {
		return
	}

	// A Redis that takes connections but answers nothing.
	pauser := redis.NewClient(&redis.Options{Addr: e.redis.Addr()})
	defer pauser.Close()
	if err := pauser.Do(context.Background(), "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes[:3] {
		got := e.do(r.method, r.path, r.ctype, []byte(r.body))
		if got.code != 503 || got.json(t)["error"] != "timeout" {
			t.Errorf("paused: %s %s: %d %s, want 503 timeout", r.method, r.path, got.code, got.body)
		}
	}
	e.expect(e.do("GET", "/healthz", "", nil), 200, "healthz while paused")
	// The pause ends by itself.
	deadline = time.Now().Add(waitLimit)
	for {
		r := e.do("GET", df+"/instances/down-1", "", nil)
		if r.code == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API did not recover after the pause: %d %s", r.code, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
