package metrics_test

// These tests scrape /metrics of a real API (httptest) over a real
// redis-server, with the engine and the activity runtime running, and read
// the body with Prometheus's own text parser.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/metrics"
	"github.com/cairnhq/cairn/redisstore"
)

var (
	_ httpapi.Metrics = (*metrics.Metrics)(nil)
	_ metrics.Store   = (*redisstore.Store)(nil)
)

const (
	df     = "/runtime/webhooks/durabletask"
	apiKey = "metrics-test-key"
	// waitLimit guards against a hung test; it is never an assertion
	// about speed.
	waitLimit = 15 * time.Second
)

// The workflows: one that completes through an expr activity, one whose
// activity fails (an expression error is final), one whose Go activity
// times out, one that waits for an event (to be terminated), and one
// whose task waits for an external worker that never comes.
var workflows = []string{`
name: Quick
activities:
  Double:
    expr: input * 2
steps:
  - activity: Double
    input: ${ input }
    result: r
  - return: ${ r }
`, `
name: Boom
activities:
  Explode:
    expr: input.nope.deeper
steps:
  - activity: Explode
    input: ${ input }
`, `
name: Slow
activities:
  Sleep:
    go: true
    timeout: 100ms
    retry: {maxAttempts: 1}
steps:
  - activity: Sleep
`, `
name: Waits
steps:
  - wait:
      event: Go
      timeout: 1h
`, `
name: Asks
steps:
  - activity: AskHuman
    input: ${ input }
`}

type stack struct {
	t     *testing.T
	redis *redistest.Server
	store *redisstore.Store
	m     *metrics.Metrics
	api   *httptest.Server
}

// storeWith starts Redis and the store with the workflows srcs deployed
// and in the returned catalog.
func storeWith(t *testing.T, srcs ...string) (*stack, *interpreter.Catalog) {
	t.Helper()
	s := &stack{t: t, redis: redistest.Start(t)}
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.Addr(), Protocol: 2, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s.store = redisstore.New(rdb, redisstore.Options{Partitions: 4})
	ctx := context.Background()
	if err := s.store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	cat := interpreter.NewCatalog(s.store)
	for _, src := range srcs {
		def, err := dsl.Parse("test.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.store.PutDefinition(ctx, def.Name, def.Hash, def.Source, time.Now()); err != nil {
			t.Fatal(err)
		}
		cat.Add(def)
	}
	return s, cat
}

// newStack starts Redis, the store, the engine and the activity runtime
// (both observed by one Metrics), and the API serving /metrics.
func newStack(t *testing.T, engine bool) *stack {
	t.Helper()
	s, cat := storeWith(t, workflows...)
	ctx := context.Background()
	reg := activity.NewRegistry()
	reg.Register("Sleep", func(ctx context.Context, _ activity.Task) (any, error) {
		<-ctx.Done() // until the activity's timeout
		return nil, ctx.Err()
	})
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s.m = metrics.New(metrics.Options{
		Store:  s.store,
		Queues: metrics.DefinitionQueues(s.store, cat, reg.Has),
		Logger: log,
	})
	if engine {
		runCtx, cancel := context.WithCancel(ctx)
		eng := interpreter.NewEngine(s.store, cat, interpreter.EngineOptions{
			Interpreter: interpreter.New(interpreter.Options{LocalActivity: reg.Has}),
			Observer:    s.m.Engine(),
			Block:       100 * time.Millisecond,
			Logger:      log,
		})
		rt := activity.NewRuntime(activity.Direct(s.store, eng), cat, reg, activity.Options{
			Consumer: eng.Consumer(), Observer: s.m.Activity(), Enqueued: s.store.TaskEnqueued,
			Block: 100 * time.Millisecond, ShutdownGrace: time.Second, Logger: log,
		})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = eng.Run(runCtx) }()
		go func() { defer wg.Done(); _ = rt.Run(runCtx) }()
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	s.api = httptest.NewServer(httpapi.New(httpapi.Config{
		Backend: s.store, Catalog: cat, APIKeys: []string{apiKey}, Metrics: s.m, Logger: log,
	}))
	t.Cleanup(s.api.Close)
	return s
}

// do sends a request with the API key and returns the status and body.
func (s *stack) do(method, path, body string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.api.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res.StatusCode, b
}

func (s *stack) start(workflow, id, input string) {
	s.t.Helper()
	if code, body := s.do("POST", df+"/orchestrators/"+workflow+"/"+id, input); code != http.StatusAccepted {
		s.t.Fatalf("start %s %s: %d %s", workflow, id, code, body)
	}
}

// waitStatus waits until instance id has the runtime status want.
func (s *stack) waitStatus(id string, want interpreter.RuntimeStatus) {
	s.t.Helper()
	deadline := time.Now().Add(waitLimit)
	var last string
	for time.Now().Before(deadline) {
		code, body := s.do("GET", df+"/instances/"+id, "")
		var st struct {
			RuntimeStatus string `json:"runtimeStatus"`
		}
		// DF answers 202 while an instance runs, 200 once it has ended.
		if (code == http.StatusOK || code == http.StatusAccepted) && json.Unmarshal(body, &st) == nil && st.RuntimeStatus == string(want) {
			return
		}
		last = fmt.Sprintf("%d %s", code, body)
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("instance %s never became %s; last answer: %s", id, want, last)
}

// scrape is one parsed /metrics body.
type scrape map[string]*dto.MetricFamily

func (s *stack) scrape() scrape {
	s.t.Helper()
	code, body := s.do("GET", "/metrics", "")
	if code != http.StatusOK {
		s.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return parse(s.t, body)
}

func parse(t *testing.T, body []byte) scrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// find returns the sample of family name whose labels are labels (given
// as name, value pairs), or nil.
func (sc scrape) find(name string, labels ...string) *dto.Metric {
	f := sc[name]
	if f == nil {
		return nil
	}
	for _, m := range f.Metric {
		if matches(m, labels) {
			return m
		}
	}
	return nil
}

func matches(m *dto.Metric, labels []string) bool {
	if len(m.Label) != len(labels)/2 {
		return false
	}
	for i := 0; i < len(labels); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value is the value of a counter or gauge sample, 0 when absent (a
// counter not yet incremented), or a histogram's count.
func (sc scrape) value(name string, labels ...string) float64 {
	m := sc.find(name, labels...)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// sum adds the values of every sample of a counter family.
func (sc scrape) sum(name string) float64 {
	var total float64
	if f := sc[name]; f != nil {
		for _, m := range f.Metric {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// want checks a sample's value.
func (s *stack) want(sc scrape, v float64, name string, labels ...string) {
	s.t.Helper()
	if got := sc.value(name, labels...); got != v {
		s.t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

func TestCountersFollowInstances(t *testing.T) {
	s := newStack(t, true)

	// Without the key, /metrics is refused as the API is.
	res, err := http.Get(s.api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without a key: %d, want 401", res.StatusCode)
	}

	sc := s.scrape()
	s.want(sc, 0, "cairn_instances_started_total", "workflow", "Quick")
	for _, f := range []string{"go_goroutines", "process_cpu_seconds_total", "cairn_work_backlog", "cairn_redis_used_memory_bytes"} {
		if sc[f] == nil {
			t.Errorf("no %s in the scrape", f)
		}
	}

	// Three that complete.
	for i := range 3 {
		s.start("Quick", fmt.Sprintf("quick-%d", i), fmt.Sprint(i))
	}
	for i := range 3 {
		s.waitStatus(fmt.Sprintf("quick-%d", i), interpreter.StatusCompleted)
	}
	sc = s.scrape()
	s.want(sc, 3, "cairn_instances_started_total", "workflow", "Quick")
	s.want(sc, 3, "cairn_instances_finished_total", "workflow", "Quick", "status", "Completed")
	s.want(sc, 0, "cairn_instances_finished_total", "workflow", "Quick", "status", "Failed")
	s.want(sc, 3, "cairn_activity_executions_total", "activity", "Double", "outcome", "completed")
	s.want(sc, 3, "cairn_activity_duration_seconds", "activity", "Double")
	s.want(sc, 3, "cairn_activity_schedule_to_start_seconds", "activity", "Double")
	// A start schedules the activity, its result completes the instance:
	// at least two transitions each, every one timed.
	if n := sc.value("cairn_transitions_total", "workflow", "Quick"); n < 6 {
		t.Errorf("cairn_transitions_total{Quick} = %v, want at least 6", n)
	}
	if n, d := sc.sum("cairn_transitions_total"), sc.value("cairn_transition_duration_seconds"); n != d {
		t.Errorf("%v transitions but %v timed", n, d)
	}

	// Two that fail in their activity, one whose activity times out.
	s.start("Boom", "boom-1", "1")
	s.start("Boom", "boom-2", "2")
	s.start("Slow", "slow-1", "")
	s.waitStatus("boom-1", interpreter.StatusFailed)
	s.waitStatus("boom-2", interpreter.StatusFailed)
	s.waitStatus("slow-1", interpreter.StatusFailed)
	// One waiting for an event, with a status stream open on it.
	s.start("Waits", "waits-1", "")
	s.waitStatus("waits-1", interpreter.StatusRunning)
	stream, err := http.NewRequest("GET", s.api.URL+"/v1/instances/waits-1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	stream.Header.Set("Authorization", "Bearer "+apiKey)
	sres, err := http.DefaultClient.Do(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Body.Close()
	// One whose task waits for a worker.
	s.start("Asks", "asks-1", `"may I?"`)
	s.waitStatus("asks-1", interpreter.StatusRunning)

	sc = s.scrape()
	s.want(sc, 2, "cairn_instances_started_total", "workflow", "Boom")
	s.want(sc, 2, "cairn_instances_finished_total", "workflow", "Boom", "status", "Failed")
	s.want(sc, 2, "cairn_activity_executions_total", "activity", "Explode", "outcome", "failed")
	s.want(sc, 1, "cairn_activity_executions_total", "activity", "Sleep", "outcome", "timed_out")
	s.want(sc, 1, "cairn_instances_finished_total", "workflow", "Slow", "status", "Failed")
	s.want(sc, 1, "cairn_instances_started_total", "workflow", "Waits")
	s.want(sc, 0, "cairn_instances_finished_total", "workflow", "Waits", "status", "Terminated")
	s.want(sc, 1, "cairn_sse_streams")
	s.want(sc, 1, "cairn_tasks_pending", "activity", "AskHuman")
	s.want(sc, 0, "cairn_tasks_pending", "activity", interpreter.LocalQueue)
	if age := sc.find("cairn_tasks_oldest_age_seconds", "activity", "AskHuman"); age == nil || age.Gauge.GetValue() < 0 {
		t.Errorf("cairn_tasks_oldest_age_seconds{AskHuman} = %v, want a gauge ≥ 0", age)
	}
	s.want(sc, 0, "cairn_work_backlog")

	// Terminated: counted once, and the stream on it ends.
	if code, body := s.do("POST", df+"/instances/waits-1/terminate?reason=test", ""); code != http.StatusAccepted {
		t.Fatalf("terminate: %d %s", code, body)
	}
	s.waitStatus("waits-1", interpreter.StatusTerminated)
	if _, err := io.Copy(io.Discard, sres.Body); err != nil {
		t.Fatalf("reading the status stream: %v", err)
	}
	sc = s.scrape()
	s.want(sc, 1, "cairn_instances_finished_total", "workflow", "Waits", "status", "Terminated")
	s.want(sc, 0, "cairn_sse_streams")
	s.want(sc, 3, "cairn_instances_started_total", "workflow", "Quick") // unchanged
	s.want(sc, 0, "cairn_store_errors_total", "kind", "commit")

	// Requests are labelled by route pattern, never by path.
	if code, _ := s.do("GET", "/no/such/"+"quick-0", ""); code != http.StatusNotFound {
		t.Fatalf("GET /no/such: %d", code)
	}
	sc = s.scrape()
	s.want(sc, 1, "cairn_http_requests_total", "route", "unmatched", "method", "GET", "code", "404")
	s.want(sc, 8, "cairn_http_requests_total", "route", df+"/orchestrators/:name/:id", "method", "POST", "code", "202")
	s.want(sc, 1, "cairn_http_request_duration_seconds", "route", "/v1/instances/:id/events", "method", "GET")
	if sc.value("cairn_http_requests_total", "route", df+"/instances/:id", "method", "GET", "code", "200") < 1 {
		t.Errorf("no GET %s/instances/:id counted", df)
	}
	for _, m := range sc["cairn_http_requests_total"].Metric {
		for _, l := range m.Label {
			for _, id := range []string{"quick-", "boom-", "waits-", "asks-"} {
				if strings.Contains(l.GetValue(), id) {
					t.Errorf("a label holds an instance id: %s=%q", l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestStoreGaugesWithoutEngine: work nobody takes shows as backlog; when
// Redis is gone the scrape still answers, without the store's gauges and
// with the failed reads counted.
func TestStoreGaugesWithoutEngine(t *testing.T) {
	s := newStack(t, false)
	for i := range 5 {
		s.start("Quick", fmt.Sprintf("q%d", i), "1")
	}
	sc := s.scrape()
	s.want(sc, 5, "cairn_work_backlog")
	if sc.value("cairn_redis_used_memory_bytes") <= 0 {
		t.Errorf("cairn_redis_used_memory_bytes = %v, want > 0", sc.value("cairn_redis_used_memory_bytes"))
	}

	s.redis.Kill()
	sc = s.scrape()
	for _, f := range []string{"cairn_work_backlog", "cairn_redis_used_memory_bytes", "cairn_tasks_pending"} {
		if sc[f] != nil {
			t.Errorf("%s is in the scrape though Redis is gone", f)
		}
	}
	if sc["go_goroutines"] == nil {
		t.Error("the scrape lost the Go collector too")
	}
	// A failed read is counted as it happens, so it shows by the next
	// scrape at the latest.
	sc = s.scrape()
	for _, kind := range []string{metrics.KindBacklog, metrics.KindMemory, metrics.KindTasks} {
		if n := sc.value("cairn_store_errors_total", "kind", kind); n < 1 {
			t.Errorf("cairn_store_errors_total{kind=%q} = %v, want ≥ 1", kind, n)
		}
	}
}

// TestCountsSource: the optional counts source becomes cairn_instances,
// and a failing one leaves it out.
func TestCountsSource(t *testing.T) {
	fail := false
	m := metrics.New(metrics.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Counts: func(context.Context) (map[string]map[string]int64, error) {
		if fail {
			return nil, fmt.Errorf("no counts today")
		}
		return map[string]map[string]int64{"Quick": {"Running": 2, "Completed": 5}, "Boom": {"Failed": 1}}, nil
	}})
	get := func() scrape {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return parse(t, rec.Body.Bytes())
	}
	sc := get()
	for _, c := range []struct {
		wf, status string
		n          float64
	}{{"Quick", "Running", 2}, {"Quick", "Completed", 5}, {"Boom", "Failed", 1}} {
		if got := sc.value("cairn_instances", "workflow", c.wf, "status", c.status); got != c.n {
			t.Errorf("cairn_instances{%s,%s} = %v, want %v", c.wf, c.status, got, c.n)
		}
	}
	fail = true
	if sc = get(); sc["cairn_instances"] != nil {
		t.Error("cairn_instances is in the scrape though its source failed")
	}
	if n := get().value("cairn_store_errors_total", "kind", metrics.KindInstances); n < 1 {
		t.Errorf("cairn_store_errors_total{kind=%q} = %v, want ≥ 1", metrics.KindInstances, n)
	}
}

// TestOpsHandler is what --role engine serves: /healthz, /readyz and
// /metrics behind the key, nothing of the API.
func TestOpsHandler(t *testing.T) {
	m := metrics.New(metrics.Options{})
	srv := httptest.NewServer(httpapi.NewOps(httpapi.Config{APIKeys: []string{apiKey}, Metrics: m}))
	defer srv.Close()
	get := func(path string, key bool) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if key {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		path string
		key  bool
		want int
	}{
		{"/healthz", false, 200},
		{"/metrics", false, 401},
		{"/metrics", true, 200},
		{"/v1/workflows", true, 404},
		{df + "/instances", true, 404},
	} {
		if got := get(c.path, c.key); got != c.want {
			t.Errorf("GET %s (key %v) = %d, want %d", c.path, c.key, got, c.want)
		}
	}
}

func TestTaskQueues(t *testing.T) {
	def, err := dsl.Parse("q.yaml", []byte(`
name: Mixed
activities:
  Priced: {expr: "1"}
  Worked: {worker: true}
  Unbound: {}
  InProcess: {}
steps:
  - activity: Priced
  - activity: Worked
  - activity: Unbound
  - activity: InProcess
`))
	if err != nil {
		t.Fatal(err)
	}
	got := metrics.TaskQueues([]*dsl.Workflow{def}, func(name string) bool { return name == "InProcess" || name == "Worked" })
	want := []string{"Unbound", "Worked", interpreter.LocalQueue}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("TaskQueues = %v, want %v", got, want)
	}
}
