package activity_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

var _ activity.TaskStore = (*redisstore.Store)(nil)

// env is one redis-server with a store, an engine and a registry whose
// handlers route tasks to the local queue.
type env struct {
	t     *testing.T
	addr  string // the redis-server's
	ctx   context.Context
	store *redisstore.Store
	ts    activity.TaskStore
	cat   *interpreter.Catalog
	reg   *activity.Registry
	defs  map[string]*dsl.Workflow
}

func logger() *slog.Logger {
	if os.Getenv("CAIRN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	store := redisstore.New(client, redisstore.Options{Logger: logger()})
	ctx := context.Background()
	if err := store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, addr: srv.Addr(), ctx: ctx, store: store, ts: store, cat: interpreter.NewCatalog(store),
		reg: activity.NewRegistry(), defs: map[string]*dsl.Workflow{}}
	eng := interpreter.NewEngine(store, e.cat, interpreter.EngineOptions{
		Consumer:    "engine",
		Interpreter: interpreter.New(interpreter.Options{LocalActivity: e.reg.Has}),
		Logger:      logger(),
		Block:       100 * time.Millisecond,
	})
	e.background(eng.Run)
	return e
}

// background runs f until the test ends.
func (e *env) background(f func(context.Context) error) {
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = f(ctx) }()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// runtime starts an activity runtime until the test ends.
func (e *env) runtime(opts activity.Options) *activity.Runtime {
	if opts.Block == 0 {
		opts.Block = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = logger()
	}
	rt := activity.NewRuntime(e.ts, e.cat, e.reg, opts)
	e.background(rt.Run)
	return rt
}

// deploy parses and stores a workflow; the catalog reads it back from the
// store, as in production.
func (e *env) deploy(src string) *dsl.Workflow {
	e.t.Helper()
	def, err := dsl.Parse("test.yaml", []byte(src))
	if err != nil {
		e.t.Fatalf("parse: %v", err)
	}
	if _, err := e.store.PutDefinition(e.ctx, def.Name, def.Hash, def.Source, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	e.defs[def.Name] = def
	return def
}

func (e *env) start(name, id string, input any) {
	e.t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateInstance(e.ctx, interpreter.Instantiate(e.defs[name], interpreter.InstanceID(id), raw, time.Now())); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
}

// wait returns the instance's status once it has finished.
func (e *env) wait(id string) *interpreter.InstanceStatus {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := e.store.FetchStatus(e.ctx, interpreter.InstanceID(id))
		if err != nil {
			e.t.Fatalf("status of %s: %v", id, err)
		}
		if st.Status.Terminal() {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("instance %s is still %s, waiting for %+v", id, st.Status, st.Pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// output waits for the instance to complete and decodes its output.
func (e *env) output(id string, v any) {
	e.t.Helper()
	st := e.wait(id)
	if st.Status != interpreter.StatusCompleted {
		e.t.Fatalf("instance %s is %s: %s", id, st.Status, st.Output)
	}
	if err := json.Unmarshal(st.Output, v); err != nil {
		e.t.Fatalf("output of %s: %s: %v", id, st.Output, err)
	}
}

// history lists the instance's history lines of one type.
func (e *env) history(id, typ string) []interpreter.HistoryEvent {
	e.t.Helper()
	h, err := e.store.FetchHistory(e.ctx, interpreter.InstanceID(id))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []interpreter.HistoryEvent
	for _, ev := range h {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// activityError is the `error` variable an onError step returns.
type activityError struct {
	Type    string  `json:"type"`
	Message string  `json:"message"`
	Attempt float64 `json:"attempt"`
}

// catchWorkflow calls activity act (with the given options YAML, indented
// under the name) and returns its result, or the error its onError sees.
func catchWorkflow(name, act, options string) string {
	return "name: " + name + `
activities:
  ` + act + `:
` + options + `
steps:
  - activity: ` + act + `
    input: ${ input }
    result: r
    onError:
      - return: {failed: "${ error }"}
  - return: {result: "${ r }"}
`
}

// outcome is what catchWorkflow returns.
type outcome struct {
	Result json.RawMessage `json:"result"`
	Failed *activityError  `json:"failed"`
}

func (e *env) outcome(id string) outcome {
	e.t.Helper()
	var o outcome
	e.output(id, &o)
	return o
}
