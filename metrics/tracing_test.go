package metrics_test

// These tests run instances through a real API (httptest), a real
// redis-server, the engine and the activity runtime, and read the spans
// from an in-memory exporter and the log from a JSON handler.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/metrics"
)

// reserveTicketHTTP is workflows/reserve-ticket.yaml with CalculateDiscount
// bound to an http endpoint (%s) instead of an expression.
const reserveTicketHTTP = `
name: ReserveTicket
input:
  type: string
  minLength: 1
status:
  type: object
activities:
  CalculateDiscount:
    timeout: 30s
    http:
      url: %s/discount
steps:
  - id: discount
    activity: CalculateDiscount
    input: ${ input }
    result: discount
  - id: offer
    setStatus:
      discount: ${ discount }
      discountTimeout: 60
      bookingUrl: https://example.com/book/${ input }
  - id: confirmation
    wait:
      event: BookingConfirmed
      timeout: 60s
      result: confirmed
      onTimeout:
        - set: {confirmed: false}
  - id: outcome
    switch:
      - when: confirmed == true
        steps:
          - setStatus: {message: Thank you for confirming your booking.}
      - default:
          - setStatus: {message: The booking was not confirmed on time. Please try again.}
  - return: ${ confirmed == true }
`

// tracedStack starts Redis, the store, the engine and the activity runtime
// observed by one Metrics with tp (nil = tracing off), as serve wires
// them, and the API, with the workflows srcs deployed.
func tracedStack(t *testing.T, tp trace.TracerProvider, log *slog.Logger, srcs ...string) *stack {
	t.Helper()
	s, cat := storeWith(t, srcs...)
	ctx := context.Background()
	s.m = metrics.New(metrics.Options{Store: s.store, Logger: log, TracerProvider: tp})
	runCtx, cancel := context.WithCancel(ctx)
	eng := interpreter.NewEngine(s.store, cat, interpreter.EngineOptions{
		Observer: s.m.Engine(), Block: 100 * time.Millisecond, Logger: log,
		// No state cache: every transition after the start loads the
		// instance, so the trace context must come back from Redis.
		CacheSize: -1,
	})
	rt := activity.NewRuntime(activity.Direct(s.store, eng), cat, nil, activity.Options{
		Consumer: eng.Consumer(), Observer: s.m.Activity(), Enqueued: s.store.TaskEnqueued,
		Block: 100 * time.Millisecond, ShutdownGrace: time.Second, Logger: log,
	})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = eng.Run(runCtx) }()
	go func() { defer wg.Done(); _ = rt.Run(runCtx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	s.api = httptest.NewServer(httpapi.New(httpapi.Config{
		Backend: s.store, Catalog: cat, APIKeys: []string{apiKey}, Metrics: s.m, Logger: log,
	}))
	t.Cleanup(s.api.Close)
	return s
}

// startTraced starts an instance with a traceparent header ("" = none).
func (s *stack) startTraced(workflow, id, input, traceparent string) {
	s.t.Helper()
	req, err := http.NewRequest("POST", s.api.URL+df+"/orchestrators/"+workflow+"/"+id, strings.NewReader(input))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		s.t.Fatalf("start %s %s: %d", workflow, id, res.StatusCode)
	}
}

// discountServer answers CalculateDiscount and keeps the traceparent of
// each request it gets.
type discountServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newDiscountServer(t *testing.T) *discountServer {
	d := &discountServer{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.seen = append(d.seen, r.Header.Get("traceparent"))
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`15`))
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *discountServer) traceparents() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.seen...)
}

// waitSpans waits until the exporter holds n spans named name, and
// returns every span it holds.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, name string, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		spans := exp.GetSpans()
		if len(named(spans, name)) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans named %q never came; have %v", n, name, spanNames(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func named(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTraceOfReserveTicket starts one ReserveTicket with a traceparent and
// follows it to the end: its transitions and its activity attempt are
// spans of the start's trace, children of the start's span, with the
// instance, workflow and step; the http activity's request carries a
// traceparent of that trace, whose parent is the attempt's span.
func TestTraceOfReserveTicket(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := metrics.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	disc := newDiscountServer(t)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s := tracedStack(t, tp, log, fmt.Sprintf(reserveTicketHTTP, disc.URL))

	const (
		traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
		parentID = "00f067aa0ba902b7"
	)
	s.startTraced("ReserveTicket", "traced-1", `"user1"`, "00-"+traceID+"-"+parentID+"-01")
	s.waitStatus("traced-1", interpreter.StatusRunning)
	waitSpans(t, exp, "activity CalculateDiscount", 1)
	if code, body := s.do("POST", df+"/instances/traced-1/raiseEvent/BookingConfirmed", `true`); code != http.StatusAccepted {
		t.Fatalf("raise: %d %s", code, body)
	}
	s.waitStatus("traced-1", interpreter.StatusCompleted)
	// start; the activity's completion; the event.
	spans := waitSpans(t, exp, "transition ReserveTicket", 3)

	transitions := named(spans, "transition ReserveTicket")
	if len(transitions) != 3 {
		t.Fatalf("%d transition spans, want 3: %v", len(transitions), spanNames(spans))
	}
	wantEvents := []interpreter.EventKind{interpreter.EvStart, interpreter.EvCompleted, interpreter.EvRaised}
	wantSteps := []string{"discount", "confirmation", ""}
	wantTo := []interpreter.RuntimeStatus{interpreter.StatusRunning, interpreter.StatusRunning, interpreter.StatusCompleted}
	for i, sp := range transitions {
		if got := sp.SpanContext.TraceID().String(); got != traceID {
			t.Errorf("transition %d: trace id %s, want the start's %s", i, got, traceID)
		}
		if got := sp.Parent.SpanID().String(); got != parentID || !sp.Parent.IsRemote() {
			t.Errorf("transition %d: parent %s (remote %v), want the start's span %s", i, got, sp.Parent.IsRemote(), parentID)
		}
		for key, want := range map[attribute.Key]string{
			metrics.AttrInstance: "traced-1", metrics.AttrWorkflow: "ReserveTicket",
			metrics.AttrStep: wantSteps[i], metrics.AttrEvent: string(wantEvents[i]),
			metrics.AttrStatusTo: string(wantTo[i]),
		} {
			if got := attr(sp, key); got != want {
				t.Errorf("transition %d: %s = %q, want %q", i, key, got, want)
			}
		}
		if sp.EndTime.Before(sp.StartTime) {
			t.Errorf("transition %d ends (%v) before it starts (%v)", i, sp.EndTime, sp.StartTime)
		}
	}

	attempts := named(spans, "activity CalculateDiscount")
	if len(attempts) != 1 {
		t.Fatalf("%d attempt spans, want 1: %v", len(attempts), spanNames(spans))
	}
	a := attempts[0]
	if got := a.SpanContext.TraceID().String(); got != traceID {
		t.Errorf("attempt: trace id %s, want the start's %s", got, traceID)
	}
	if got := a.Parent.SpanID().String(); got != parentID {
		t.Errorf("attempt: parent %s, want the start's span %s", got, parentID)
	}
	for key, want := range map[attribute.Key]string{
		metrics.AttrInstance: "traced-1", metrics.AttrWorkflow: "ReserveTicket", metrics.AttrStep: "discount",
		metrics.AttrActivity: "CalculateDiscount", metrics.AttrAttempt: "1", metrics.AttrOutcome: activity.OutcomeCompleted,
	} {
		if got := attr(a, key); got != want {
			t.Errorf("attempt: %s = %q, want %q", key, got, want)
		}
	}
	if a.Status.Code == codes.Error {
		t.Errorf("attempt: status %v, want not an error", a.Status)
	}

	sent := disc.traceparents()
	if len(sent) != 1 {
		t.Fatalf("the discount endpoint got %d requests, want 1", len(sent))
	}
	want := "00-" + traceID + "-" + a.SpanContext.SpanID().String() + "-01"
	if sent[0] != want {
		t.Errorf("the http activity sent traceparent %q, want %q (the start's trace, the attempt's span)", sent[0], want)
	}
}

// TestTraceWithoutTraceparent: an instance started without a trace
// context (or with a malformed one, which is ignored) still has one trace
// for all its spans, of its own.
func TestTraceWithoutTraceparent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := metrics.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	disc := newDiscountServer(t)
	s := tracedStack(t, tp, slog.New(slog.NewTextHandler(t.Output(), nil)), fmt.Sprintf(reserveTicketHTTP, disc.URL))

	s.startTraced("ReserveTicket", "plain-1", `"user1"`, "")
	s.startTraced("ReserveTicket", "plain-2", `"user2"`, "00-not-a-trace-context-at-all-01")
	// Each: start, the activity's completion (then it waits).
	spans := waitSpans(t, exp, "transition ReserveTicket", 4)
	spans = waitSpans(t, exp, "activity CalculateDiscount", 2)
	traces := map[string]map[trace.TraceID]bool{}
	for _, sp := range spans {
		id := attr(sp, metrics.AttrInstance)
		if traces[id] == nil {
			traces[id] = map[trace.TraceID]bool{}
		}
		traces[id][sp.SpanContext.TraceID()] = true
		if sp.Parent.IsValid() {
			t.Errorf("span %s of %s has parent %s; want a root span", sp.Name, id, sp.Parent.SpanID())
		}
	}
	if len(traces) != 2 || len(traces["plain-1"]) != 1 || len(traces["plain-2"]) != 1 {
		t.Fatalf("trace ids per instance: %v; want one each", traces)
	}
	for id1 := range traces["plain-1"] {
		if traces["plain-2"][id1] {
			t.Errorf("both instances are in trace %s", id1)
		}
	}
	sent := disc.traceparents()
	if len(sent) != 2 {
		t.Fatalf("the discount endpoint got %d requests, want 2", len(sent))
	}
	for _, tp := range sent {
		found := false
		for _, ids := range traces {
			for id := range ids {
				found = found || strings.Contains(tp, id.String())
			}
		}
		if !found {
			t.Errorf("the http activity sent traceparent %q, of none of the instances' traces %v", tp, traces)
		}
	}
}

// TestTracingOffPassesTraceOn: with tracing off (no provider) nothing is
// recorded, and an http activity still sends the start's traceparent on
// unchanged, so the service it calls joins the caller's trace.
func TestTracingOffPassesTraceOn(t *testing.T) {
	disc := newDiscountServer(t)
	// As serve gets it: a nil *sdktrace.TracerProvider, for no variables.
	tp, err := metrics.TracerProviderFromEnv(context.Background(), func(string) string { return "" })
	if err != nil || tp != nil {
		t.Fatalf("TracerProviderFromEnv with no variables = %v, %v; want nil, nil", tp, err)
	}
	s := tracedStack(t, tp, slog.New(slog.NewTextHandler(t.Output(), nil)), fmt.Sprintf(reserveTicketHTTP, disc.URL))
	const start = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	s.startTraced("ReserveTicket", "off-1", `"user1"`, start)
	s.startTraced("ReserveTicket", "off-2", `"user2"`, "")
	deadline := time.Now().Add(waitLimit)
	for len(disc.traceparents()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the discount endpoint got %d requests, want 2", len(disc.traceparents()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	sent := disc.traceparents()
	if !(sent[0] == start && sent[1] == "" || sent[1] == start && sent[0] == "") {
		t.Errorf("traceparents sent: %q; want the start's %q for off-1 and none for off-2", sent, start)
	}
}

// lockedBuffer is a bytes.Buffer the engine's goroutines can log into.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log lines whose msg is msg.
func (l *lockedBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("a log line is not JSON: %v: %s", err, sc.Text())
		}
		if line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// TestFailedInstanceLogsOneJSONLine: an instance whose activity fails for
// good writes exactly one "instance failed" line, with its id, workflow,
// step, error type and message; the one that completes writes none.
func TestFailedInstanceLogsOneJSONLine(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s := tracedStack(t, nil, log, workflows[0], workflows[1]) // Quick, Boom
	s.startTraced("Quick", "fine-1", `21`, "")
	s.startTraced("Boom", "boom-1", `{"a":1}`, "")
	s.waitStatus("boom-1", interpreter.StatusFailed)
	s.waitStatus("fine-1", interpreter.StatusCompleted)

	// The line is written after the commit that made the status visible.
	deadline := time.Now().Add(waitLimit)
	for len(buf.lines(t, "instance failed")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := buf.lines(t, "instance failed")
	if len(lines) != 1 {
		t.Fatalf("%d \"instance failed\" lines, want 1: %v", len(lines), lines)
	}
	l := lines[0]
	for key, want := range map[string]string{
		"level": "ERROR", "instance": "boom-1", "workflow": "Boom",
		"error_type": interpreter.ErrTypeExpression, // the expr binding's error, passed through
	} {
		if got, _ := l[key].(string); got != want {
			t.Errorf("%s = %q, want %q (line %v)", key, got, want, l)
		}
	}
	if step, _ := l["step"].(string); step == "" {
		t.Errorf("no step in %v", l)
	}
	if msg, _ := l["error"].(string); !strings.Contains(msg, "input.nope.deeper") {
		t.Errorf("error = %q, want the expression's message (about input.nope)", msg)
	}
}

// The engine observer counts schedule ticks (cairn_schedule_runs_total),
// with tracing off and on: the tracing wrapper passes them on.
func TestScheduleRunsCounted(t *testing.T) {
	for _, tp := range []*sdktrace.TracerProvider{nil, sdktrace.NewTracerProvider()} {
		opts := metrics.Options{}
		if tp != nil {
			opts.TracerProvider = tp
		}
		m := metrics.New(opts)
		so, ok := m.Engine().(interpreter.ScheduleObserver)
		if !ok {
			t.Fatalf("tracing %v: the engine observer does not hear schedule ticks", tp != nil)
		}
		so.OnScheduleRun("nightly", interpreter.OutcomeStarted)
		so.OnScheduleRun("nightly", interpreter.OutcomeStarted)
		so.OnScheduleRun("nightly", interpreter.OutcomeSkipped)
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		sc := parse(t, rec.Body.Bytes())
		if got := sc.value("cairn_schedule_runs_total", "schedule", "nightly", "outcome", "started"); got != 2 {
			t.Errorf("tracing %v: started = %v, want 2", tp != nil, got)
		}
		if got := sc.value("cairn_schedule_runs_total", "schedule", "nightly", "outcome", "skipped"); got != 1 {
			t.Errorf("tracing %v: skipped = %v, want 1", tp != nil, got)
		}
	}
}
