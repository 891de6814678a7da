package httpapi

// Handler-level tests of input validation, auth, routing and error mapping.
// They use fakeBackend, a small in-memory stand-in, because no Redis
// behaviour is tested here; store behaviour is tested end to end in
// e2e_test.go against a real redis-server.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

type fakeBackend struct {
	mu    sync.Mutex
	insts map[interpreter.InstanceID]*interpreter.InstanceStatus
	defs  map[string]string // name → latest hash
	panic bool              // FetchStatus panics
}

func newFake() *fakeBackend {
	return &fakeBackend{insts: map[interpreter.InstanceID]*interpreter.InstanceStatus{}, defs: map[string]string{"Hello": "h1"}}
}

func (f *fakeBackend) CreateInstance(_ context.Context, n interpreter.NewInstance) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.insts[n.State.ID]; old != nil && !old.Status.Terminal() {
		return interpreter.ErrAlreadyRunning
	}
	st := n.State
	f.insts[st.ID] = &interpreter.InstanceStatus{ID: st.ID, Name: st.Name, DefHash: st.DefHash, Status: st.Status,
		Input: st.Input, CreatedTime: st.CreatedTime, LastUpdatedTime: st.LastUpdatedTime}
	return nil
}

func (f *fakeBackend) get(id interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.insts[id]
	if st == nil {
		return nil, interpreter.ErrNotFound
	}
	if st.Status.Terminal() {
		return st, interpreter.ErrFinished
	}
	return st, nil
}

func (f *fakeBackend) RaiseEvent(_ context.Context, id interpreter.InstanceID, _ string, _ json.RawMessage, _ time.Time) error {
	_, err := f.get(id)
	return err
}

func (f *fakeBackend) SignalWithStart(ctx context.Context, n interpreter.NewInstance, name string, data json.RawMessage) (bool, error) {
	err := f.CreateInstance(ctx, n)
	if errors.Is(err, interpreter.ErrAlreadyRunning) {
		return false, nil
	}
	return err == nil, err
}

func (f *fakeBackend) SendControl(_ context.Context, id interpreter.InstanceID, _ interpreter.Event) error {
	_, err := f.get(id)
	return err
}

func (f *fakeBackend) FetchStatus(_ context.Context, id interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	if f.panic {
		panic("boom")
	}
	st, err := f.get(id)
	if errors.Is(err, interpreter.ErrFinished) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	c := *st
	return &c, nil
}

func (f *fakeBackend) FetchHistory(context.Context, interpreter.InstanceID) ([]interpreter.HistoryEvent, error) {
	return nil, nil
}

func (f *fakeBackend) ListInstances(_ context.Context, q interpreter.ListQuery) ([]interpreter.InstanceStatus, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []interpreter.InstanceStatus
	for _, st := range f.insts {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, "", nil
}

func (f *fakeBackend) Purge(_ context.Context, id interpreter.InstanceID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.insts[id] == nil {
		return interpreter.ErrNotFound
	}
	delete(f.insts, id)
	return nil
}

func (f *fakeBackend) PurgeMany(context.Context, time.Time, time.Time, []interpreter.RuntimeStatus) (int, error) {
	return 0, nil
}

func (f *fakeBackend) PutDefinition(context.Context, string, string, []byte, time.Time) (bool, error) {
	return true, nil
}

func (f *fakeBackend) LoadDefinition(context.Context, string, string) ([]byte, error) {
	return nil, interpreter.ErrNotFound
}

func (f *fakeBackend) LatestDefinition(_ context.Context, name string) (string, error) {
	if h, ok := f.defs[name]; ok {
		return h, nil
	}
	return "", interpreter.ErrNotFound
}

func (f *fakeBackend) DescribeDefinition(context.Context, string) (*interpreter.DefinitionInfo, error) {
	return nil, interpreter.ErrNotFound
}

func (f *fakeBackend) ListDefinitions(context.Context) ([]interpreter.DefinitionInfo, error) {
	return nil, nil
}

func (f *fakeBackend) WatchStatus(context.Context, interpreter.InstanceID) (<-chan interpreter.StatusChange, func(), error) {
	ch := make(chan interpreter.StatusChange)
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }, nil
}

func (f *fakeBackend) Ping(context.Context) error { return nil }

// fakeCatalog returns a bare definition without parsing any YAML.
type fakeCatalog struct{}

func (fakeCatalog) HasEventSchemas() bool { return false }

func (fakeCatalog) Get(_ context.Context, name, hash string) (*dsl.Workflow, error) {
	return &dsl.Workflow{Name: name, Hash: hash}, nil
}

type harness struct {
	t   *testing.T
	be  *fakeBackend
	srv *httptest.Server
	log *bytes.Buffer
}

func newHarness(t *testing.T, keys ...string) *harness {
	return newHarnessWith(t, func(c *Config) { c.APIKeys = keys })
}

// newHarnessWith serves a fake backend with a 1 KiB body limit, adjusted
// by edit.
func newHarnessWith(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, be: newFake(), log: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: h.log}, nil))
	cfg := Config{Backend: h.be, Catalog: fakeCatalog{}, MaxBodyBytes: 1024, Logger: logger}
	edit(&cfg)
	h.srv = httptest.NewServer(New(cfg))
	t.Cleanup(h.srv.Close)
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) errBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" || e.Message == "" {
		t.Fatalf("error body is not {error, message} JSON: %s (%v)", r.body, err)
	}
	return e
}

// do sends a request; path is raw (may hold escapes); headers alternate
// name, value.
func (h *harness) do(method, path string, body []byte, headers ...string) reply {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

const df = "/runtime/webhooks/durabletask"

func TestInstanceIDRules(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ id, rule string }{
		{strings.Repeat("x", 257), "at most 256"},
		{"a%5Cb", `'\\'`},
		{"a%23b", "'#'"},
		{"a%3Fb", "'?'"},
		{"a%2Fb", "'/'"},
		{"@entity", "'@'"},
		{"a%01b", "control"},
		{"a%7Fb", "control"},
		{"a%FFb", "UTF-8"},
	} {
		for _, r := range []reply{
			h.do("POST", df+"/orchestrators/Hello/"+c.id, nil),
			h.do("GET", df+"/instances/"+c.id, nil),
			h.do("POST", df+"/instances/"+c.id+"/raiseEvent/E", []byte("1"), "Content-Type", "application/json"),
		} {
			if r.code != http.StatusBadRequest {
				t.Errorf("id %q: %d %s, want 400", c.id, r.code, r.body)
				continue
			}
			if e := r.errBody(t); e.Error != "invalid-instance-id" || !strings.Contains(e.Message, c.rule) {
				t.Errorf("id %q: %+v, want invalid-instance-id naming %s", c.id, e, c.rule)
			}
		}
	}
	// 256 characters (runes) is fine.
	id := strings.Repeat("é", 256)
	if r := h.do("POST", df+"/orchestrators/Hello/"+id, nil); r.code != http.StatusAccepted {
		t.Errorf("256-rune id: %d %s", r.code, r.body)
	}
}

func TestMalformedBodies(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", df+"/orchestrators/Hello", []byte("{\n  \"a\": 1,\n  \"b\": tru\n}"))
	if r.code != 400 {
		t.Fatalf("malformed JSON: %d %s", r.code, r.body)
	}
	if e := r.errBody(t); e.Error != "invalid-json" || !strings.Contains(e.Message, "line 3, column") {
		t.Errorf("malformed JSON: %+v, want the position", e)
	}
	r = h.do("POST", df+"/orchestrators/Hello", []byte("\"ab\xffc\""))
	if e := r.errBody(t); r.code != 400 || e.Error != "invalid-utf8" || !strings.Contains(e.Message, "byte offset 3") {
		t.Errorf("invalid UTF-8: %d %+v", r.code, e)
	}
	r = h.do("POST", df+"/orchestrators/Hello", []byte("1 2"))
	if e := r.errBody(t); r.code != 400 || e.Error != "invalid-json" {
		t.Errorf("trailing data: %d %+v", r.code, e)
	}
	// Deep nesting is refused, not a crash.
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	h2 := newHarnessWith(t, func(c *Config) { c.MaxBodyBytes = 1 << 20 })
	if r := h2.do("POST", df+"/orchestrators/Hello", []byte(deep)); r.code != 400 {
		t.Errorf("deep nesting: %d %s", r.code, r.body)
	}
	// raiseEvent wants JSON.
	h.do("POST", df+"/orchestrators/Hello/ev1", nil)
	r = h.do("POST", df+"/instances/ev1/raiseEvent/Go", []byte("true"), "Content-Type", "text/plain")
	if e := r.errBody(t); r.code != 400 || e.Error != "json-required" {
		t.Errorf("raiseEvent text/plain: %d %+v", r.code, e)
	}
	r = h.do("POST", df+"/instances/ev1/raiseEvent/Go", []byte("true"), "Content-Type", "application/json; charset=utf-8")
	if r.code != http.StatusAccepted {
		t.Errorf("raiseEvent JSON: %d %s", r.code, r.body)
	}
	// Bad query parameters name themselves.
	for _, p := range []string{
		df + "/instances?top=0", df + "/instances?top=x", df + "/instances?runtimeStatus=Sleeping",
		df + "/instances?createdTimeFrom=yesterday", df + "/instances/ev1?showHistory=maybe",
		df + "/orchestrators/Hello?timeout=-1",
	} {
		method := "GET"
		if strings.Contains(p, "orchestrators") {
			method = "POST"
		}
		if r := h.do(method, p, nil); r.code != 400 || r.errBody(t).Error != "bad-parameter" {
			t.Errorf("%s: %d %s", p, r.code, r.body)
		}
	}
	if r := h.do("DELETE", df+"/instances", nil); r.code != 400 || !strings.Contains(r.errBody(t).Message, "createdTimeFrom") {
		t.Errorf("purge without createdTimeFrom: %d %s", r.code, r.body)
	}
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t) // limit 1024 bytes
	big := []byte(`"` + strings.Repeat("x", 1100) + `"`)
	if r := h.do("POST", df+"/orchestrators/Hello", big); r.code != 413 || r.errBody(t).Error != "payload-too-large" {
		t.Errorf("start: %d %s", r.code, r.body)
	}
	h.do("POST", df+"/orchestrators/Hello/big", nil)
	r := h.do("POST", df+"/instances/big/raiseEvent/E", big, "Content-Type", "application/json")
	if r.code != 413 || !strings.Contains(r.errBody(t).Message, "1 KiB") {
		t.Errorf("raiseEvent: %d %s", r.code, r.body)
	}
	// Without Content-Length (chunked) the limit still holds.
	req, _ := http.NewRequest("POST", h.srv.URL+df+"/orchestrators/Hello", io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked: %d", resp.StatusCode)
	}
	if r := h.do("PUT", "/v1/workflows/Hello", big, "Content-Type", "application/yaml"); r.code != 413 {
		t.Errorf("put workflow: %d %s", r.code, r.body)
	}
}

func TestRoutingErrors(t *testing.T) {
	h := newHarness(t)
	r := h.do("PUT", df+"/instances/x", nil)
	if r.code != 405 || r.errBody(t).Error != "method-not-allowed" {
		t.Errorf("PUT instance: %d %s", r.code, r.body)
	}
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow = %q", allow)
	}
	if r := h.do("GET", df+"/orchestrators/Hello", nil); r.code != 405 {
		t.Errorf("GET orchestrators: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/nowhere", nil); r.code != 404 || r.errBody(t).Error != "not-found" {
		t.Errorf("no route: %d %s", r.code, r.body)
	}
	if r := h.do("POST", df+"/orchestrators/Nope", nil); r.code != 404 || !strings.Contains(r.errBody(t).Message, `"Nope"`) {
		t.Errorf("unknown workflow: %d %s", r.code, r.body)
	}
	if r := h.do("PUT", "/v1/workflows/Hello", []byte("name: Hello"), "Content-Type", "text/plain"); r.code != 415 {
		t.Errorf("put workflow as text/plain: %d %s", r.code, r.body)
	}
}

func TestTrailingSlashAndDFParameters(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", df+"/orchestrators/Hello/ts1/?taskHub=Hub&connection=Storage", []byte(`{"x":1}`))
	if r.code != http.StatusAccepted {
		t.Fatalf("start with trailing slash: %d %s", r.code, r.body)
	}
	for _, p := range []string{df + "/instances/", df + "/instances", df + "/instances/ts1/", df + "/instances/ts1?taskHub=Hub"} {
		if r := h.do("GET", p, nil); r.code != 200 && r.code != 202 {
			t.Errorf("GET %s: %d %s", p, r.code, r.body)
		}
	}
	if r := h.do("GET", "/healthz/", nil); r.code != 200 {
		t.Errorf("healthz/: %d", r.code)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, "k1", "second-key")
	h.do("POST", df+"/orchestrators/Hello/a1?code=k1", nil)
	for _, c := range []struct {
		name    string
		path    string
		headers []string
		want    int
	}{
		{"none", df + "/instances/a1", nil, 401},
		{"wrong bearer", df + "/instances/a1", []string{"Authorization", "Bearer nope"}, 401},
		{"wrong header", df + "/instances/a1", []string{"x-functions-key", "k"}, 401},
		{"wrong code", df + "/instances/a1?code=k12", nil, 401},
		{"bearer", df + "/instances/a1", []string{"Authorization", "Bearer second-key"}, 202},
		{"header", df + "/instances/a1", []string{"x-functions-key", "k1"}, 202},
		{"code", df + "/instances/a1?code=k1", nil, 202},
		{"v1 none", "/v1/workflows", nil, 401},
		{"v1 bearer", "/v1/workflows", []string{"Authorization", "bearer k1"}, 200},
		{"healthz is open", "/healthz", nil, 200},
		{"healthz/ is open", "/healthz/", nil, 200},
		{"readyz none", "/readyz", nil, 401},
		{"readyz key", "/readyz", []string{"x-functions-key", "k1"}, 200},
		{"openapi none", "/v1/openapi.json", nil, 401},
		{"openapi key", "/v1/openapi.json?code=second-key", nil, 200},
		{"unknown route none", "/nowhere", nil, 401},
		{"unknown route key", "/nowhere", []string{"x-functions-key", "k1"}, 404},
		{"healthz lookalike", "/healthzz", nil, 401},
		{"empty bearer", df + "/instances/a1", []string{"Authorization", "Bearer "}, 401},
		{"key prefix", df + "/instances/a1?code=k", nil, 401},
	} {
		r := h.do("GET", c.path, nil, c.headers...)
		if r.code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.code, r.body, c.want)
			continue
		}
		if c.want == 401 && r.errBody(t).Error != "unauthorized" {
			t.Errorf("%s: %s", c.name, r.body)
		}
	}
	if strings.Contains(h.log.String(), "k1") || strings.Contains(h.log.String(), "second-key") {
		t.Errorf("a key reached the log: %s", h.log)
	}
}

func TestManagementURLs(t *testing.T) {
	h := newHarness(t, "k&1")
	r := h.do("POST", df+"/orchestrators/Hello/id%20one?code=k%261", nil,
		"X-Forwarded-Proto", "https", "X-Forwarded-Host", "api.example.com, proxy.internal")
	if r.code != 202 {
		t.Fatalf("start: %d %s", r.code, r.body)
	}
	var p map[string]string
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	base := "https://api.example.com" + df + "/instances/id%20one"
	want := map[string]string{
		"id":                    "id one",
		"statusQueryGetUri":     base + "?code=k%261",
		"sendEventPostUri":      base + "/raiseEvent/{eventName}?code=k%261",
		"terminatePostUri":      base + "/terminate?reason={text}&code=k%261",
		"purgeHistoryDeleteUri": base + "?code=k%261",
		"restartPostUri":        base + "/restart?code=k%261",
		"suspendPostUri":        base + "/suspend?reason={text}&code=k%261",
		"resumePostUri":         base + "/resume?reason={text}&code=k%261",
	}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("payload\n got %v\nwant %v", p, want)
	}
	if r.header.Get("Location") != want["statusQueryGetUri"] || r.header.Get("Retry-After") != "10" {
		t.Errorf("headers: %v", r.header)
	}
	// A key sent in a header never goes into a URL.
	r = h.do("POST", df+"/orchestrators/Hello/two", nil, "x-functions-key", "k&1")
	if strings.Contains(string(r.body), "code=") {
		t.Errorf("header key leaked into the URLs: %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != h.srv.URL+df+"/instances/two" {
		t.Errorf("Location = %q", loc)
	}
}

func TestStatusPayloadShape(t *testing.T) {
	h := newHarness(t)
	h.do("POST", df+"/orchestrators/Hello/shape", nil)
	r := h.do("GET", df+"/instances/shape", nil)
	if r.code != 202 || r.header.Get("Retry-After") != "5" || r.header.Get("Location") != h.srv.URL+df+"/instances/shape" {
		t.Fatalf("status: %d %v %s", r.code, r.header, r.body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"name", "instanceId", "runtimeStatus", "input", "customStatus", "output", "createdTime", "lastUpdatedTime", "currentStep", "waitingFor", "definitionHash", "revision"} {
		if _, ok := m[f]; !ok {
			t.Errorf("field %s missing: %s", f, r.body)
		}
	}
	if _, ok := m["historyEvents"]; ok {
		t.Errorf("historyEvents without showHistory: %s", r.body)
	}
	if string(m["input"]) != "null" || string(m["output"]) != "null" || string(m["customStatus"]) != "null" {
		t.Errorf("absent values must be null: %s", r.body)
	}
	var created string
	_ = json.Unmarshal(m["createdTime"], &created)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(created) {
		t.Errorf("createdTime %q is not second-precision RFC 3339 UTC", created)
	}
	r = h.do("GET", df+"/instances/shape?showHistory=true", nil)
	if !strings.Contains(string(r.body), `"historyEvents":[]`) {
		t.Errorf("showHistory=true: %s", r.body)
	}
	r = h.do("GET", df+"/instances/missing", nil)
	if r.code != 404 || !strings.Contains(r.errBody(t).Message, `"missing"`) {
		t.Errorf("missing: %d %s", r.code, r.body)
	}
}

func TestPanicIsJSON500(t *testing.T) {
	h := newHarness(t)
	h.be.panic = true
	r := h.do("GET", df+"/instances/x", nil)
	if r.code != 500 || r.errBody(t).Error != "internal" {
		t.Errorf("panic: %d %s", r.code, r.body)
	}
	if !strings.Contains(h.log.String(), "boom") {
		t.Errorf("panic not logged: %s", h.log)
	}
}

func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", interpreter.ErrNotFound), 404},
		{fmt.Errorf("x: %w", interpreter.ErrAlreadyRunning), 409},
		{fmt.Errorf("x: %w", interpreter.ErrFinished), 410},
		{interpreter.ErrConflict, 409},
		{fmt.Errorf("x: %w", &http.MaxBytesError{Limit: 1}), 413},
		{dsl.Issues{{Message: "bad"}}, 422},
		{fmt.Errorf("deploy: %w", dsl.Issues{{Message: "bad"}}), 422},
		{badRequest("x", "y"), 400},
		{context.DeadlineExceeded, 503},
		{fmt.Errorf("%w: redisstore: x: %w", interpreter.ErrUnavailable, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), 503},
		{fmt.Errorf("%w: redisstore: x: %w", interpreter.ErrUnavailable, io.EOF), 503},
		{fmt.Errorf("%w: LOADING", interpreter.ErrUnavailable), 503},
		{fmt.Errorf("%w: redisstore: x: %w", context.DeadlineExceeded, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), 503},
		{errors.New("disk on fire"), 500},
	} {
		if got, _ := statusOf(c.err); got != c.want {
			t.Errorf("statusOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestOpenAPICoversRoutes checks that every gin route is documented in
// openapi.json with its method, and every documented operation is routed.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	param := regexp.MustCompile(`:([A-Za-z]+)`)
	routed := map[string]bool{}
	for _, r := range newEngine(Config{Backend: newFake()}).Routes() {
		p := param.ReplaceAllString(r.Path, "{$1}")
		key := strings.ToLower(r.Method) + " " + p
		routed[key] = true
		if _, ok := doc.Paths[p][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, p)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			if !routed[m+" "+p] {
				t.Errorf("openapi.json documents %s %s, which is not routed", m, p)
			}
		}
	}
}

func TestEventNames(t *testing.T) {
	h := newHarness(t)
	h.do("POST", df+"/orchestrators/Hello/en", nil)
	for _, name := range []string{"a%01b", strings.Repeat("e", 257)} {
		r := h.do("POST", df+"/instances/en/raiseEvent/"+name, []byte("1"), "Content-Type", "application/json")
		if r.code != 400 || r.errBody(t).Error != "invalid-event-name" {
			t.Errorf("event %q: %d %s", name, r.code, r.body)
		}
	}
	if r := h.do("POST", df+"/instances/en/raiseEvent/"+strings.Repeat("e", 256), nil, "Content-Type", "application/json"); r.code != 202 {
		t.Errorf("256-byte event name: %d %s", r.code, r.body)
	}
}

func TestStreamKeepAlive(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) { c.KeepAlive = time.Millisecond })
	h.do("POST", df+"/orchestrators/Hello/ka", nil)
	res, err := http.Get(h.srv.URL + "/v1/instances/ka/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %v", res.StatusCode, res.Header)
	}
	var lines []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() && len(lines) < 5 {
		lines = append(lines, sc.Text())
	}
	got := strings.Join(lines, "\n")
	if !strings.HasPrefix(got, "id: 0\nevent: status\ndata: {\"instanceId\":\"ka\",\"runtimeStatus\":\"Pending\"") ||
		!strings.HasSuffix(got, ": keep-alive") {
		t.Errorf("stream began:\n%s", got)
	}
}

// FuzzHandler: nothing a client sends makes the server answer 500, and
// every error is {error, message} JSON.
func FuzzHandler(f *testing.F) {
	for _, s := range []struct{ method, path, ctype, body string }{
		{"POST", df + "/orchestrators/Hello", "application/json", `{"a":1}`},
		{"POST", df + "/orchestrators/Hello/x%00y", "", ""},
		{"POST", df + "/orchestrators/Hello/id?timeout=1e308&pollingInterval=NaN", "", "[[[["},
		{"GET", df + "/instances?top=99999999999999999999&createdTimeFrom=2026-13-45", "", ""},
		{"GET", df + "/instances/%ZZ", "", ""},
		{"POST", df + "/instances/a/raiseEvent/%", "application/json", "\xff"},
		{"DELETE", df + "/instances?createdTimeFrom=2026-01-01T00:00:00Z&runtimeStatus=,,,", "", ""},
		{"PUT", "/v1/workflows/Hello", "application/yaml", "name: Hello\nsteps: [{return: ${ 1 + }}]"},
		{"PUT", "/v1/workflows/Hello", "application/yaml", "&a [*a]"},
		{"POST", "/v1/validate", "application/yaml", "{{{{"},
		{"GET", "/v1/instances/%2F/events", "", ""},
		{"PATCH", "//..//runtime/webhooks/durabletask/instances", "", ""},
	} {
		f.Add(s.method, s.path, s.ctype, []byte(s.body))
	}
	be := newFake()
	h := New(Config{Backend: be, Catalog: fakeCatalog{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		req, err := http.NewRequest(method, "http://cairn.test"+path, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if strings.HasSuffix(req.URL.Path, "/events") {
			return // a stream of a live instance does not end by itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		if ctx.Err() != nil {
			return // start-and-wait outlived the test's deadline
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Message == "" {
				t.Fatalf("%s %s: %d with body %q", method, path, rec.Code, rec.Body)
			}
		}
	})
}
