// Package e2e runs the engine against a real Redis (its own redis-server,
// or a shared cluster under CAIRN_TEST_REDIS=cluster): every example
// workflow end to end, several engines at once, and engines killed mid-run.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// env is one Redis with a store, a catalog and helpers to start instances.
type env struct {
	t testing.TB
	// srv is the test's own redis-server; nil on the cluster run
	// (redistest.OnCluster), where cl is the shared cluster instead.
	srv    *redistest.Server
	cl     *redistest.Cluster
	client redis.UniversalClient
	store  *redisstore.Store
	cat    *interpreter.Catalog
	defs   map[string]*dsl.Workflow
}

// newEnv builds the test's store on its own redis-server, or, on the
// cluster run, on the shared cluster emptied for it.
func newEnv(t testing.TB) *env {
	return newEnvWith(t, redisstore.Options{})
}

func newEnvWith(t testing.TB, opts redisstore.Options) *env {
	t.Helper()
	if !redistest.OnCluster() {
		return newEnvOnWith(t, redistest.Start(t), opts)
	}
	cl := redistest.SharedCluster(t)
	client := newRedisClient(cl.Addrs())
	t.Cleanup(func() { client.Close() })
	flushShared(t, client.(*redis.ClusterClient))
	return build(t, nil, cl, client, clusterStoreOptions(opts))
}

// newEnvOn builds the store on srv, a redis-server the test controls
// (restarts, reconfigures); such tests skip on the cluster run.
func newEnvOn(t testing.TB, srv *redistest.Server) *env {
	return newEnvOnWith(t, srv, redisstore.Options{})
}

func newEnvOnWith(t testing.TB, srv *redistest.Server, opts redisstore.Options) *env {
	t.Helper()
	client := newRedisClient([]string{srv.Addr()})
	t.Cleanup(func() { client.Close() })
	return build(t, srv, nil, client, opts)
}

func build(t testing.TB, srv *redistest.Server, cl *redistest.Cluster, client redis.UniversalClient, opts redisstore.Options) *env {
	t.Helper()
	store := redisstore.New(client, opts)
	if err := store.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, cl: cl, client: client, store: store, cat: interpreter.NewCatalog(store), defs: map[string]*dsl.Workflow{}}
}

// newRedisClient is a client of addrs: one address is a redis-server,
// several are the nodes of a cluster, opened with cairn serve's cluster
// options (redisopts.go).
func newRedisClient(addrs []string) redis.UniversalClient {
	if len(addrs) == 1 {
		return redis.NewClient(&redis.Options{Addr: addrs[0]})
	}
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true})
}

// clusterStoreOptions is opts as cairn serve uses them on a cluster: an
// acknowledged write waits for a replica unless opts say otherwise.
func clusterStoreOptions(opts redisstore.Options) redisstore.Options {
	if opts.Durability == redisstore.DurabilityNone {
		opts.Durability = redisstore.DurabilityReplica
	}
	return opts
}

// flushShared empties every master of the shared cluster (and so its
// replicas) and drops the scripts, so each test starts on an empty Redis
// as on its own redis-server.
func flushShared(t testing.TB, c *redis.ClusterClient) {
	t.Helper()
	err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		if err := m.FlushAll(ctx).Err(); err != nil {
			return err
		}
		return m.ScriptFlush(ctx).Err()
	})
	if err != nil {
		t.Fatalf("flush the shared cluster: %v", err)
	}
}

// redisAddrs names the test's Redis for a child process (runEngineProcess):
// its server's address, or the cluster's node addresses, comma-separated.
func (e *env) redisAddrs() string {
	if e.cl != nil {
		return strings.Join(e.cl.Addrs(), ",")
	}
	return e.srv.Addr()
}

// eachMaster calls f with a client of every master: the server itself, or
// each master of the cluster (concurrently). Commands with no key (KEYS,
// INFO) reach only one node through a cluster client.
func (e *env) eachMaster(f func(ctx context.Context, c *redis.Client) error) error {
	ctx := context.Background()
	if c, ok := e.client.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, f)
	}
	return f(ctx, e.client.(*redis.Client))
}

// keys lists the keys matching pattern on every master.
func (e *env) keys(pattern string) []string {
	e.t.Helper()
	var mu sync.Mutex
	var all []string
	err := e.eachMaster(func(ctx context.Context, c *redis.Client) error {
		ks, err := c.Keys(ctx, pattern).Result()
		mu.Lock()
		all = append(all, ks...)
		mu.Unlock()
		return err
	})
	if err != nil {
		e.t.Fatalf("keys %s: %v", pattern, err)
	}
	return all
}

// deploy parses and stores a workflow source.
func (e *env) deploy(file string, src []byte) *dsl.Workflow {
	e.t.Helper()
	def, err := dsl.Parse(file, src)
	if err != nil {
		e.t.Fatalf("parse %s: %v", file, err)
	}
	if _, err := e.store.PutDefinition(context.Background(), def.Name, def.Hash, def.Source, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	e.cat.Add(def)
	e.defs[def.Name] = def
	return def
}

func (e *env) deployFile(path string) *dsl.Workflow {
	src, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.deploy(filepath.Base(path), src)
}

func (e *env) start(name, id string, input any) {
	e.t.Helper()
	raw, _ := json.Marshal(input)
	ni := interpreter.Instantiate(e.defs[name], interpreter.InstanceID(id), raw, time.Now())
	if err := e.store.CreateInstance(context.Background(), ni); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
}

func (e *env) raise(id, name string, data any) error {
	raw, _ := json.Marshal(data)
	return e.store.RaiseEvent(context.Background(), interpreter.InstanceID(id), name, raw, time.Now())
}

// run starts an engine and a local activity runner until the test ends.
func (e *env) run(opts interpreter.EngineOptions) {
	ctx, cancel := context.WithCancel(context.Background())
	eng := interpreter.NewEngine(e.store, e.cat, opts)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); eng.Run(ctx) }()
	go func() { defer wg.Done(); runActivities(ctx, e.store, e.cat, opts.Consumer+"-act") }()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// runActivities is a minimal stand-in for the activity runtime: it computes
// expr-bound activities from the local queue, and answers "Echo" with its
// input, so the engine tests depend on nothing but the store.
func runActivities(ctx context.Context, store *redisstore.Store, cat *interpreter.Catalog, consumer string) {
	runActivitiesCounting(ctx, store, cat, consumer, 30*time.Second, nil)
}

// runActivitiesCounting takes over tasks leased longer than reclaim (and
// those the store handed back at once), and calls executed for every
// execution.
func runActivitiesCounting(ctx context.Context, store *redisstore.Store, cat *interpreter.Catalog, consumer string, reclaim time.Duration, executed func(redisstore.Task)) {
	lastReclaim := time.Now()
	for ctx.Err() == nil {
		tasks, err := store.ReadTasks(ctx, consumer, interpreter.LocalQueue, 64, 200*time.Millisecond)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if len(tasks) == 0 || time.Since(lastReclaim) > reclaim/2 {
			lastReclaim = time.Now()
			more, err := store.ReclaimTasks(ctx, consumer, interpreter.LocalQueue, reclaim, 256)
			if err == nil {
				tasks = append(tasks, more...)
			}
		}
		for _, tk := range tasks {
			if executed != nil {
				executed(tk)
			}
			s := tk.Schedule
			var result any
			var input any
			json.Unmarshal(s.Input, &input)
			def, err := cat.Get(ctx, s.Workflow, s.DefHash)
			if err == nil {
				if o := def.Activities[s.Activity]; o != nil && o.Binding != nil && o.Binding.Expr != nil {
					result, err = o.Binding.Expr.Eval(&dsl.Env{Input: input, Vars: map[string]any{}})
				} else {
					result = input
				}
			}
			if err != nil {
				store.FailTask(context.WithoutCancel(ctx), tk.Ref, interpreter.ErrorInfo{Type: "Error", Message: err.Error()}, time.Now())
				continue
			}
			raw, _ := json.Marshal(result)
			store.CompleteTask(context.WithoutCancel(ctx), tk.Ref, raw, time.Now())
		}
	}
}

// waitDone polls until the instance is finished.
func (e *env) waitDone(id string, within time.Duration) *interpreter.InstanceStatus {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(id))
		if err == nil && st.Status.Terminal() {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("instance %s not finished after %s: %+v %v", id, within, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls until the instance waits for the given event.
func (e *env) waitFor(id, event string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(id))
		if err == nil && st.Pending != nil && st.Pending.Kind == interpreter.WaitEvent && st.Pending.Event == event {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("instance %s never waited for %s", id, event)
}

func jsonEq(t testing.TB, what string, got json.RawMessage, want string) {
	t.Helper()
	var a, b any
	json.Unmarshal(got, &a)
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad want %q", want)
	}
	ga, _ := json.Marshal(a)
	gb, _ := json.Marshal(b)
	if string(ga) != string(gb) {
		t.Fatalf("%s = %s, want %s", what, ga, gb)
	}
}

// watch collects the custom statuses an instance publishes, in order.
func (e *env) watch(id string) func() []string {
	ch, stop, err := e.store.WatchStatus(context.Background(), interpreter.InstanceID(id))
	if err != nil {
		e.t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := ""
		for c := range ch {
			mu.Lock()
			if s := string(c.CustomStatus); s != "" && s != "null" && s != last {
				seen = append(seen, s)
				last = s
			}
			fin := c.Status.Terminal()
			mu.Unlock()
			if fin {
				return
			}
		}
	}()
	return func() []string {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		stop()
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func normal(t testing.TB, s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %s", s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func wantStatuses(t testing.TB, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("custom statuses\n got %q\nwant %q", got, want)
	}
	for i := range want {
		if normal(t, got[i]) != normal(t, want[i]) {
			t.Fatalf("custom status %d\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestExampleWorkflows(t *testing.T) {
	e := newEnv(t)
	for _, f := range []string{"reserve-ticket.yaml", "city-recommender.yaml", "set-status-test.yaml", "order-pipeline.yaml"} {
		e.deployFile(filepath.Join("..", "..", "workflows", f))
	}
	e.run(interpreter.EngineOptions{Consumer: "e1"})

	t.Run("ReserveTicket confirmed", func(t *testing.T) {
		collect := e.watch("rt-1")
		e.start("ReserveTicket", "rt-1", "user1")
		e.waitFor("rt-1", "BookingConfirmed")
		if err := e.raise("rt-1", "BookingConfirmed", true); err != nil {
			t.Fatal(err)
		}
		st := e.waitDone("rt-1", 10*time.Second)
		if st.Status != interpreter.StatusCompleted {
			t.Fatalf("status %s output %s", st.Status, st.Output)
		}
		jsonEq(t, "output", st.Output, `true`)
		// len("user1") = 5 → 10 + 5%3*5 = 20
		wantStatuses(t, collect(),
			`{"discount":20,"discountTimeout":60,"bookingUrl":"https://example.com/book/user1"}`,
			`{"message":"Thank you for confirming your booking."}`)
		if err := e.raise("rt-1", "BookingConfirmed", true); !errors.Is(err, interpreter.ErrFinished) {
			t.Fatalf("event for a finished instance: %v, want ErrFinished", err)
		}
	})

	t.Run("CityRecommender", func(t *testing.T) {
		collect := e.watch("city-2")
		e.start("CityRecommender", "city-2", 2)
		e.waitFor("city-2", "CitySelected")
		e.raise("city-2", "CitySelected", "London")
		st := e.waitDone("city-2", 10*time.Second)
		jsonEq(t, "output", st.Output, `"London"`)
		got := collect()
		wantStatuses(t, got[:1], `{"recommendedCities":["Seattle","London"],"recommendedSeasons":["Summer"]}`)
		if len(got) != 2 {
			t.Fatalf("statuses %q", got)
		}
		e.start("CityRecommender", "city-9", 9)
		st = e.waitDone("city-9", 10*time.Second)
		if st.Status != interpreter.StatusFailed {
			t.Fatalf("choice 9: %s", st.Status)
		}
	})

	t.Run("SetStatusTest", func(t *testing.T) {
		collect := e.watch("sst")
		e.start("SetStatusTest", "sst", nil)
		st := e.waitDone("sst", 10*time.Second)
		if st.Status != interpreter.StatusCompleted {
			t.Fatalf("status %s output %s", st.Status, st.Output)
		}
		got := collect()
		found := false
		for _, s := range got {
			if normal(t, s) == normal(t, `{"nextActions":["A","B","C"],"foo":2}`) {
				found = true
			}
		}
		if !found {
			t.Fatalf("statuses %q lack nextActions", got)
		}
	})

	t.Run("OrderPipeline", func(t *testing.T) {
		collect := e.watch("order-1")
		e.start("OrderPipeline", "order-1", map[string]any{"orderId": "A-1", "items": []any{map[string]any{"sku": "x", "quantity": 2, "price": 5}}})
		st := e.waitDone("order-1", 30*time.Second)
		if st.Status != interpreter.StatusCompleted {
			t.Fatalf("status %s output %s", st.Status, st.Output)
		}
		if got := collect(); len(got) < 3 {
			t.Fatalf("a progress workflow published only %d statuses: %q", len(got), got)
		}
	})
}

const shortTicket = `
name: ShortTicket
activities:
  CalculateDiscount: {expr: "15"}
steps:
  - activity: CalculateDiscount
    input: ${ input }
    result: discount
  - setStatus: {discount: "${ discount }", discountTimeout: 1, bookingUrl: ""}
  - wait:
      event: BookingConfirmed
      timeout: 1s
      result: confirmed
      onTimeout:
        - set: {confirmed: false}
  - switch:
      - when: confirmed == true
        steps:
          - setStatus: {message: Thank you for confirming your booking.}
      - default:
          - setStatus: {message: The booking was not confirmed on time. Please try again.}
  - return: ${ confirmed }
`

func TestTimeoutFiresAndLateEventIsRefused(t *testing.T) {
	e := newEnv(t)
	e.deploy("short.yaml", []byte(shortTicket))
	e.run(interpreter.EngineOptions{Consumer: "t1"})
	e.start("ShortTicket", "late", "u")
	st := e.waitDone("late", 15*time.Second)
	jsonEq(t, "output", st.Output, `false`)
	jsonEq(t, "custom status", st.CustomStatus, `{"message":"The booking was not confirmed on time. Please try again."}`)
	if err := e.raise("late", "BookingConfirmed", true); !errors.Is(err, interpreter.ErrFinished) {
		t.Fatalf("late event: %v", err)
	}
}

func TestEventsBeforeAndInOrder(t *testing.T) {
	e := newEnv(t)
	e.deploy("two.yaml", []byte(`
name: TwoWaits
steps:
  - wait: {duration: 300ms}
  - wait: {event: E, result: a}
  - wait: {event: E, result: b}
  - return: ${ [a, b] }
`))
	e.start("TwoWaits", "two", nil)
	// Raised before any engine runs: both are buffered, then consumed in order.
	if err := e.raise("two", "E", "first"); err != nil {
		t.Fatal(err)
	}
	if err := e.raise("two", "E", "second"); err != nil {
		t.Fatal(err)
	}
	e.run(interpreter.EngineOptions{Consumer: "o1"})
	st := e.waitDone("two", 10*time.Second)
	jsonEq(t, "output", st.Output, `["first","second"]`)
	if err := e.raise("nobody", "E", 1); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("event for unknown instance: %v", err)
	}
}

// checkHistory asserts that every transition of a finished ReserveTicket-
// shaped instance appears exactly once.
func checkHistory(t testing.TB, store *redisstore.Store, id string) {
	t.Helper()
	h, err := store.FetchHistory(context.Background(), interpreter.InstanceID(id))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ev := range h {
		count[ev.Type]++
	}
	for _, typ := range []string{"ExecutionStarted", "ExecutionCompleted", "TaskScheduled", "TaskCompleted"} {
		if count[typ] != 1 {
			t.Fatalf("%s: %s appears %d times in %v", id, typ, count[typ], count)
		}
	}
}

func TestTwoEnginesShareOneRedis(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	e := newEnv(t)
	e.deploy("short.yaml", []byte(shortTicket))
	e.run(interpreter.EngineOptions{Consumer: "a", Batch: 32})
	e.run(interpreter.EngineOptions{Consumer: "b", Batch: 32})
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("two-%04d", i)
		e.start("ShortTicket", id, "u")
		// Half get their event before the wait (buffered), half never (timeout).
		if i%2 == 0 {
			if err := e.raise(id, "BookingConfirmed", true); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("two-%04d", i)
		st := e.waitDone(id, 60*time.Second)
		jsonEq(t, id+" output", st.Output, fmt.Sprint(i%2 == 0))
		checkHistory(t, e.store, id)
	}
}

// flakyLoader fails its first calls as a store that does not answer would.
type flakyLoader struct {
	store *redisstore.Store
	fails atomic.Int32
}

func (f *flakyLoader) LoadDefinition(ctx context.Context, name, hash string) ([]byte, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("connection refused")
	}
	return f.store.LoadDefinition(ctx, name, hash)
}

// TestDefinitionLoadFailureKeepsWork: when the definition cannot be read
// for a passing reason, the instance's work stays pending and is retried
// after the lease instead of being dropped.
func TestDefinitionLoadFailureKeepsWork(t *testing.T) {
	e := newEnv(t)
	e.deploy("two.yaml", []byte("name: Quick\nsteps:\n  - return: ${ input + 1 }\n"))
	loader := &flakyLoader{store: e.store}
	loader.fails.Store(2)
	cat := interpreter.NewCatalog(loader) // cold: the engine must load the definition
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		interpreter.NewEngine(e.store, cat, interpreter.EngineOptions{Consumer: "flaky", ReclaimAfter: 300 * time.Millisecond}).Run(ctx)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	e.start("Quick", "q1", 41)
	st := e.waitDone("q1", 20*time.Second)
	jsonEq(t, "output", st.Output, "42")
}

// allParts lists every partition.
func (e *env) allParts() []int {
	ps := make([]int, e.store.Partitions())
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// hand drives eng by hand: it reads every pending work item for eng's
// consumer (there must be some) and processes them.
func (e *env) hand(eng *interpreter.Engine) {
	e.t.Helper()
	ctx := context.Background()
	items, err := e.store.ReadWork(ctx, eng.Consumer(), e.allParts(), 100, 0)
	if err != nil || len(items) == 0 {
		e.t.Fatalf("read for %s: %d items, %v", eng.Consumer(), len(items), err)
	}
	eng.Process(ctx, items)
}

// leaseTask leases the one pending local activity task.
func (e *env) leaseTask() redisstore.Task {
	e.t.Helper()
	tasks, err := e.store.ReadTasks(context.Background(), "w", interpreter.LocalQueue, 10, 0)
	if err != nil || len(tasks) != 1 {
		e.t.Fatalf("tasks %v %v", tasks, err)
	}
	return tasks[0]
}
