package activity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
)

func TestGoHandler(t *testing.T) {
	e := newEnv(t)
	type call struct {
		task activity.Task
		name string
	}
	calls := make(chan call, 10)
	e.reg.Register("Greet", func(ctx context.Context, task activity.Task) (any, error) {
		var in struct{ Name string }
		if err := task.Decode(&in); err != nil {
			return nil, activity.NonRetryable(err)
		}
		calls <- call{task, in.Name}
		if task.Attempt == 1 {
			return nil, errors.New("flaky")
		}
		return map[string]any{"greeting": "hello " + in.Name, "attempt": task.Attempt}, nil
	})
	e.deploy(`name: Hello
activities:
  Greet:
    retry: {maxAttempts: 3, firstInterval: 10ms}
steps:
  - id: greet
    activity: Greet
    input: ${ input }
    result: r
  - return: ${ r }
`)
	e.runtime(activity.Options{})
	e.start("Hello", "h1", map[string]string{"name": "Ada"})

	var out struct {
		Greeting string
		Attempt  int
	}
	e.output("h1", &out)
	if out.Greeting != "hello Ada" || out.Attempt != 2 {
		t.Fatalf("output %+v", out)
	}
	for want := 1; want <= 2; want++ {
		c := <-calls
		tk := c.task
		if c.name != "Ada" || tk.Attempt != want || tk.Activity != "Greet" || tk.InstanceID != "h1" ||
			tk.Workflow != "Hello" || tk.StepID != "greet" || tk.ID == "" {
			t.Fatalf("call %d: %+v", want, c)
		}
	}
	failed, done := e.history("h1", "TaskFailed"), e.history("h1", "TaskCompleted")
	if len(failed) != 1 || failed[0].Attempt != 1 || len(done) != 1 || done[0].Attempt != 2 {
		t.Fatalf("history: failed %+v, completed %+v", failed, done)
	}
	var info interpreter.ErrorInfo
	if err := json.Unmarshal(failed[0].Data, &info); err != nil || info.Type != activity.ErrTypeFailed || info.Message != "flaky" || !info.Retryable {
		t.Fatalf("failure %s: %v", failed[0].Data, err)
	}
}

func TestGoHandlerErrors(t *testing.T) {
	e := newEnv(t)
	var calls sync.Map // activity → *atomic.Int32
	count := func(name string) *atomic.Int32 {
		c, _ := calls.LoadOrStore(name, new(atomic.Int32))
		return c.(*atomic.Int32)
	}
	handlers := map[string]activity.Handler{
		"Final": func(ctx context.Context, task activity.Task) (any, error) {
			count(task.Activity).Add(1)
			return nil, activity.NonRetryable(fmt.Errorf("card %s declined", "4242"))
		},
		"Typed": func(ctx context.Context, task activity.Task) (any, error) {
			count(task.Activity).Add(1)
			return nil, fmt.Errorf("wrapped: %w", &activity.Error{Type: "OutOfStock", Message: "no more tickets", NonRetryable: true})
		},
		"Panics": func(ctx context.Context, task activity.Task) (any, error) {
			count(task.Activity).Add(1)
			var m map[string]int
			m["boom"]++ // nil map write
			return nil, nil
		},
		"BadResult": func(ctx context.Context, task activity.Task) (any, error) {
			count(task.Activity).Add(1)
			return func() {}, nil
		},
		"BadInput": activity.Func(func(ctx context.Context, in struct{ N int }) (int, error) {
			return in.N, nil
		}),
	}
	cases := []struct {
		act       string
		wantType  string
		wantMsg   string
		wantCalls int32 // with maxAttempts 2; -1 = do not check
	}{
		{"Final", activity.ErrTypeFailed, "card 4242 declined", 1},
		{"Typed", "OutOfStock", "no more tickets", 1},
		{"Panics", activity.ErrTypePanic, "assignment to entry in nil map", 2},
		{"BadResult", activity.ErrTypeInvalidResult, "not JSON", 1},
		{"BadInput", activity.ErrTypeInvalidInput, "decoding input", -1},
	}
	for _, c := range cases {
		e.reg.Register(c.act, handlers[c.act])
		e.deploy(catchWorkflow("W"+c.act, c.act, "    retry: {maxAttempts: 2, firstInterval: 10ms}"))
	}
	e.runtime(activity.Options{})
	for _, c := range cases {
		e.start("W"+c.act, "i-"+c.act, "not an object")
	}
	for _, c := range cases {
		o := e.outcome("i-" + c.act)
		if o.Failed == nil || o.Failed.Type != c.wantType || !strings.Contains(o.Failed.Message, c.wantMsg) {
			t.Errorf("%s: outcome %+v (failed %+v), want %s containing %q", c.act, o, o.Failed, c.wantType, c.wantMsg)
			continue
		}
		if got := count(c.act).Load(); c.wantCalls >= 0 && got != c.wantCalls {
			t.Errorf("%s: called %d times, want %d", c.act, got, c.wantCalls)
		}
	}
}

func TestNotRegistered(t *testing.T) {
	e := newEnv(t)
	e.deploy(catchWorkflow("Missing", "Nobody", "    go: true"))
	e.runtime(activity.Options{})
	e.start("Missing", "m1", nil)
	o := e.outcome("m1")
	if o.Failed == nil || o.Failed.Type != activity.ErrTypeNotRegistered {
		t.Fatalf("outcome %+v", o)
	}
}

func TestExprBinding(t *testing.T) {
	e := newEnv(t)
	e.deploy(catchWorkflow("Discount", "CalculateDiscount", `    expr: 10 + len(input) % 3 * 5`))
	e.deploy(catchWorkflow("Broken", "Ratio", `    expr: input.a.b.c
    retry: {maxAttempts: 3, firstInterval: 10ms}`))
	e.runtime(activity.Options{})
	e.start("Discount", "d1", "Tokyo")
	e.start("Broken", "b1", map[string]any{"a": nil})

	if o := e.outcome("d1"); o.Failed != nil || string(o.Result) != "20" {
		t.Fatalf("discount: %s %+v", o.Result, o.Failed)
	}
	o := e.outcome("b1")
	if o.Failed == nil || o.Failed.Type != activity.ErrTypeExpression || o.Failed.Attempt != 1 {
		t.Fatalf("broken: %+v (failed %+v)", o, o.Failed)
	}
	// An expression error is final: no second attempt.
	if n := len(e.history("b1", "TaskScheduled")); n != 1 {
		t.Fatalf("scheduled %d times", n)
	}
}

func TestHTTPBinding(t *testing.T) {
	e := newEnv(t)
	var hits sync.Map // path → *atomic.Int32
	hit := func(p string) int32 {
		c, _ := hits.LoadOrStore(p, new(atomic.Int32))
		return c.(*atomic.Int32).Add(1)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hit(r.URL.Path)
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			if r.Method != http.MethodPut || r.Header.Get("Content-Type") != "application/json" ||
				r.Header.Get("Authorization") != "Bearer tok-Ada" || r.Header.Get("X-Count") != "3" ||
				r.Header.Get("Cairn-Instance-Id") != "echo" || r.Header.Get("Cairn-Attempt") != "1" {
				http.Error(w, fmt.Sprintf("bad request: %s %v", r.Method, r.Header), http.StatusTeapot)
				return
			}
			fmt.Fprintf(w, `{"got": %s, "query": %q}`, body, r.URL.RawQuery)
		case "/get":
			if r.Method != http.MethodGet || len(body) != 0 {
				http.Error(w, "want a GET without body", http.StatusTeapot)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case "/flaky": // 503 then 429 then fine
			switch n {
			case 1:
				http.Error(w, "try later", http.StatusServiceUnavailable)
			case 2:
				http.Error(w, "slow down", http.StatusTooManyRequests)
			default:
				w.Write([]byte(`"third time lucky"`))
			}
		case "/reject":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"error":"amount must be positive","pad":"%s"}`, strings.Repeat("x", 2000))
		case "/notjson":
			w.Write([]byte("<html>hello</html>"))
		case "/slow":
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	retry := "    retry: {maxAttempts: 3, firstInterval: 10ms}\n"
	binding := func(path, extra string) string {
		return retry + "    http:\n      url: " + srv.URL + path + "\n" + extra
	}
	flows := map[string]string{
		"echo": binding("/echo?key=secret", `      method: PUT
      headers:
        Authorization: Bearer tok-${ input.name }
        X-Count: ${ input.n }
`),
		"get":     binding("/get", "      method: GET\n"),
		"flaky":   binding("/flaky", ""),
		"reject":  binding("/reject?key=secret", ""),
		"notjson": binding("/notjson", ""),
		"slow":    binding("/slow", "      timeout: 100ms\n"),
	}
	for name, opts := range flows {
		e.deploy(catchWorkflow("H"+name, "Call", strings.TrimSuffix(opts, "\n")))
		e.start("H"+name, name, map[string]any{"name": "Ada", "n": 3})
	}
	e.runtime(activity.Options{})

	if o := e.outcome("echo"); o.Failed != nil || string(o.Result) != `{"got":{"n":3,"name":"Ada"},"query":"key=secret"}` {
		t.Errorf("echo: %s %+v", o.Result, o.Failed)
	}
	if o := e.outcome("get"); o.Failed != nil || string(o.Result) != `null` {
		t.Errorf("get: %s %+v", o.Result, o.Failed)
	}
	if o := e.outcome("flaky"); o.Failed != nil || string(o.Result) != `"third time lucky"` {
		t.Errorf("flaky: %s %+v", o.Result, o.Failed)
	}
	o := e.outcome("reject")
	if o.Failed == nil || o.Failed.Type != activity.ErrTypeHTTP || o.Failed.Attempt != 1 ||
		!strings.Contains(o.Failed.Message, "422") || !strings.Contains(o.Failed.Message, "amount must be positive") ||
		strings.Contains(o.Failed.Message, "secret") || len(o.Failed.Message) > 1024 {
		t.Errorf("reject: %+v", o.Failed)
	}
	if o := e.outcome("notjson"); o.Failed == nil || o.Failed.Type != activity.ErrTypeInvalidResult || o.Failed.Attempt != 1 {
		t.Errorf("notjson: %+v", o.Failed)
	}
	if o := e.outcome("slow"); o.Failed == nil || o.Failed.Type != activity.ErrTypeTimeout || o.Failed.Attempt != 3 {
		t.Errorf("slow: %+v", o.Failed)
	}
	var attempts []int
	for _, h := range e.history("flaky", "TaskFailed") {
		attempts = append(attempts, h.Attempt)
	}
	if fmt.Sprint(attempts) != "[1 2]" {
		t.Errorf("flaky failed attempts %v", attempts)
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	var sawDeadline atomic.Bool
	e.reg.Register("Sleepy", func(ctx context.Context, task activity.Task) (any, error) {
		_, ok := ctx.Deadline()
		sawDeadline.Store(ok)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	e.deploy(catchWorkflow("Sleep", "Sleepy", "    timeout: 200ms"))
	e.runtime(activity.Options{})
	e.start("Sleep", "s1", nil)
	o := e.outcome("s1")
	if o.Failed == nil || o.Failed.Type != activity.ErrTypeTimeout || !sawDeadline.Load() {
		t.Fatalf("outcome %+v, deadline seen %v", o.Failed, sawDeadline.Load())
	}
}

func TestConcurrencyBound(t *testing.T) {
	e := newEnv(t)
	var now, peak atomic.Int32
	e.reg.Register("Work", func(ctx context.Context, task activity.Task) (any, error) {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		return task.Attempt, nil
	})
	e.deploy(catchWorkflow("Many", "Work", ""))
	const instances = 40
	for i := range instances {
		e.start("Many", fmt.Sprint("m", i), i)
	}
	e.runtime(activity.Options{Concurrency: 3})
	for i := range instances {
		if o := e.outcome(fmt.Sprint("m", i)); string(o.Result) != "1" {
			t.Fatalf("m%d: %+v", i, o)
		}
	}
	if p := peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak concurrency %d", p)
	}
}

// TestReclaimAfterCrash: a runtime reads a task and dies without
// completing it; once the lease expires another runtime runs it, and the
// dead one's late completion is ignored.
func TestReclaimAfterCrash(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.reg.Register("Charge", func(ctx context.Context, task activity.Task) (any, error) {
		runs.Add(1)
		return "charged by survivor", nil
	})
	e.deploy(catchWorkflow("Pay", "Charge", ""))
	e.start("Pay", "p1", 42)

	var dead []interpreter.Task
	for len(dead) == 0 {
		var err error
		dead, err = e.store.ReadTasks(e.ctx, "dead", interpreter.LocalQueue, 1, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
	}
	if dead[0].Schedule.Instance != "p1" || dead[0].Schedule.Activity != "Charge" {
		t.Fatalf("task %+v", dead[0])
	}

	e.runtime(activity.Options{Consumer: "survivor", Lease: 300 * time.Millisecond})
	if o := e.outcome("p1"); string(o.Result) != `"charged by survivor"` {
		t.Fatalf("outcome %+v", o)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times", n)
	}

	// The dead runtime comes back and completes: a duplicate, ignored.
	err := e.ts.CompleteTask(e.ctx, dead[0].Ref, json.RawMessage(`"charged by the dead"`), time.Now())
	if !errors.Is(err, interpreter.ErrDuplicate) {
		t.Fatalf("late completion: %v", err)
	}
	err = e.ts.FailTask(e.ctx, dead[0].Ref, interpreter.ErrorInfo{Type: "X", Message: "late"}, time.Now())
	if !errors.Is(err, interpreter.ErrDuplicate) {
		t.Fatalf("late failure: %v", err)
	}
	if o := e.outcome("p1"); string(o.Result) != `"charged by survivor"` {
		t.Fatalf("outcome after the late completion %+v", o)
	}
	if n := len(e.history("p1", "TaskCompleted")); n != 1 {
		t.Fatalf("%d TaskCompleted lines", n)
	}
}

// TestHeartbeat: a task that runs for many leases is extended by its
// runtime, so a second runtime never takes it over.
func TestHeartbeat(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	release := make(chan struct{})
	e.reg.Register("Long", func(ctx context.Context, task activity.Task) (any, error) {
		runs.Add(1)
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	e.deploy(catchWorkflow("LongRun", "Long", ""))
	lease := 600 * time.Millisecond
	e.runtime(activity.Options{Consumer: "a", Lease: lease})
	e.start("LongRun", "l1", nil)
	for runs.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	e.runtime(activity.Options{Consumer: "b", Lease: lease})
	time.Sleep(3 * lease)
	close(release)
	if o := e.outcome("l1"); string(o.Result) != `"done"` {
		t.Fatalf("outcome %+v", o)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times: the lease was not extended", n)
	}
}

// TestShutdown: Run returns after its running task finishes (and records
// it); a task that ignores cancellation is abandoned after the grace
// period and runs again on another runtime once its lease expires.
func TestShutdown(t *testing.T) {
	e := newEnv(t)
	started := make(chan string, 4)
	finish := make(chan struct{})
	stuck := make(chan struct{})
	defer close(stuck)
	var stubborn atomic.Int32
	e.reg.Register("Finishes", func(ctx context.Context, task activity.Task) (any, error) {
		started <- task.InstanceID
		<-finish
		return "finished", nil
	})
	e.reg.Register("Stubborn", func(ctx context.Context, task activity.Task) (any, error) {
		if stubborn.Add(1) == 1 {
			started <- task.InstanceID
			<-stuck // ignores ctx
		}
		return "second try", nil
	})
	e.deploy(catchWorkflow("F", "Finishes", ""))
	e.deploy(catchWorkflow("S", "Stubborn", ""))
	lease := 300 * time.Millisecond

	// A graceful shutdown waits for the running task.
	rt := activity.NewRuntime(e.ts, e.cat, e.reg, activity.Options{Consumer: "first", Lease: lease, Block: 50 * time.Millisecond, Logger: logger()})
	ctx, cancel := context.WithCancel(e.ctx)
	ran := make(chan error, 1)
	go func() { ran <- rt.Run(ctx) }()
	e.start("F", "f1", nil)
	<-started
	cancel()
	close(finish)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if o := e.outcome("f1"); string(o.Result) != `"finished"` {
		t.Fatalf("f1: %+v", o)
	}

	// A task that ignores cancellation is abandoned after the grace period.
	rt = activity.NewRuntime(e.ts, e.cat, e.reg, activity.Options{Consumer: "second", Lease: lease, Block: 50 * time.Millisecond,
		ShutdownGrace: 50 * time.Millisecond, Logger: logger()})
	ctx, cancel = context.WithCancel(e.ctx)
	go func() { ran <- rt.Run(ctx) }()
	e.start("S", "s1", nil)
	<-started
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if st, _ := e.store.FetchStatus(e.ctx, "s1"); st.Status.Terminal() {
		t.Fatalf("s1 finished though its task was abandoned: %s", st.Output)
	}
	e.runtime(activity.Options{Consumer: "third", Lease: lease})
	if o := e.outcome("s1"); string(o.Result) != `"second try"` {
		t.Fatalf("s1: %+v", o)
	}
}

// logWatch is a slog.Handler that passes each message on to a channel.
type logWatch struct{ msgs chan string }

func (w logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w logWatch) Handle(_ context.Context, r slog.Record) error {
	select {
	case w.msgs <- r.Message:
	default:
	}
	return nil
}
func (w logWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w logWatch) WithGroup(string) slog.Handler      { return w }

// TestDuplicateCompletionIgnored: a runtime whose task was taken over (its
// heartbeat came too late) completes it after the new holder did; the
// store ignores the second completion and the instance keeps the first.
func TestDuplicateCompletionIgnored(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	firstStarted, releaseFirst := make(chan struct{}), make(chan struct{})
	e.reg.Register("Book", func(ctx context.Context, task activity.Task) (any, error) {
		if calls.Add(1) == 1 {
			close(firstStarted)
			<-releaseFirst // ignores ctx: a handler stuck in a call
			return "first", nil
		}
		return "second", nil
	})
	e.deploy(catchWorkflow("Booking", "Book", ""))
	e.start("Booking", "b1", nil)

	// Runtime a heartbeats rarely; runtime b reclaims anything idle for
	// 200ms, so it takes a's task while a still runs it.
	watch := logWatch{msgs: make(chan string, 100)}
	e.runtime(activity.Options{Consumer: "a", Lease: time.Hour, Logger: slog.New(watch)})
	<-firstStarted
	e.runtime(activity.Options{Consumer: "b", Lease: 200 * time.Millisecond})
	if o := e.outcome("b1"); string(o.Result) != `"second"` {
		t.Fatalf("outcome %+v", o)
	}
	close(releaseFirst)
	for seen := false; !seen; {
		select {
		case msg := <-watch.msgs:
			seen = strings.Contains(msg, "already completed")
		case <-time.After(time.Minute):
			t.Fatal("runtime a never reported its completion as a duplicate")
		}
	}
	if o := e.outcome("b1"); string(o.Result) != `"second"` {
		t.Fatalf("outcome after the duplicate %+v", o)
	}
	if n := len(e.history("b1", "TaskCompleted")); n != 1 || calls.Load() != 2 {
		t.Fatalf("%d TaskCompleted lines, %d calls", n, calls.Load())
	}
}
