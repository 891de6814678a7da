package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
)

// End-to-end tests of the flow steps (while, try/catch, onError, typed
// fail, the workflow timeout, wait any/all, forEach, parallel,
// continueAsNew) on a real Redis.

func TestLoopsAndErrorsOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("loop.yaml", []byte(`
name: LoopTry
activities:
  Double: {expr: "input * 2"}
  Check: {expr: "input > 20 ? fromJSON('x') : input"}
steps:
  - set: {n: 1, trail: []}
  - while:
      condition: n < 100
      max: 20
      steps:
        - activity: Double
          input: ${ n }
          result: n
        - set: {trail: "${ concat(trail, [n]) }"}
  - try:
      steps:
        - activity: Check
          input: ${ n }
      catch:
        as: problem
        steps:
          - setStatus: {caught: "${ problem.type }"}
  - fail:
      error: Done
      message: "reached ${ n }"
      data: ${ trail }
    onError:
      - return: {error: "${ error }", trail: "${ trail }"}
`))
	e.deploy("timeout.yaml", []byte(`
name: Deadline
timeout: 500ms
steps:
  - wait: {event: Never}
`))
	e.run(interpreter.EngineOptions{Consumer: "lang1"})
	e.start("LoopTry", "loop-1", nil)
	st := e.waitDone("loop-1", 20*time.Second)
	if st.Status != interpreter.StatusCompleted {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	jsonEq(t, "output", st.Output, `{"error":{"type":"Done","message":"reached 128","step":"steps[3]","data":[2,4,8,16,32,64,128]},"trail":[2,4,8,16,32,64,128]}`)
	jsonEq(t, "custom status", st.CustomStatus, `{"caught":"Error"}`)

	e.start("Deadline", "slow-1", nil)
	st = e.waitDone("slow-1", 20*time.Second)
	if st.Status != interpreter.StatusFailed || !strings.Contains(string(st.Output), "TimeoutError") {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
}

func TestWaitAnyAllOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("anyall.yaml", []byte(`
name: AnyAll
steps:
  - wait:
      any: [{event: Approved}, {event: Rejected}]
      result: decision
  - wait:
      all: [{event: Signed}, {event: Paid}]
      timeout: 20s
      result: papers
  - return: {decision: "${ decision }", papers: "${ papers }"}
`))
	e.start("AnyAll", "aa-1", nil)
	// Paid comes before any wait wants it: buffered, then taken by the all.
	if err := e.raise("aa-1", "Paid", 12.5); err != nil {
		t.Fatal(err)
	}
	e.run(interpreter.EngineOptions{Consumer: "lang2"})
	waitPending(t, e, "aa-1", func(p *interpreter.Pending) bool { return len(p.Events) == 2 && !p.All })
	e.raise("aa-1", "Rejected", "too dear")
	waitPending(t, e, "aa-1", func(p *interpreter.Pending) bool { return p.All && len(p.Events) == 1 })
	e.raise("aa-1", "Signed", "ada")
	st := e.waitDone("aa-1", 20*time.Second)
	jsonEq(t, "output", st.Output, `{"decision":{"event":"Rejected","data":"too dear"},"papers":{"Paid":12.5,"Signed":"ada"}}`)
}

// waitPending polls until the instance's pending wait satisfies ok.
func waitPending(t *testing.T, e *env, id string, ok func(*interpreter.Pending) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(id))
		if err == nil && st.Pending != nil && ok(st.Pending) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("instance %s never reached the expected wait", id)
}

func TestBranchesOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("branches.yaml", []byte(`
name: Branches
activities:
  Price: {expr: "input.qty * 3"}
steps:
  - id: quote
    parallel:
      branches:
        - - forEach:
              items: ${ input }
              as: line
              steps:
                - activity: Price
                  input: ${ line }
                  result: price
              result: prices
        - - wait: {event: Approved, result: by}
      result: both
  - id: risky
    parallel:
      branches:
        - - wait: {event: Never, timeout: 1h}
        - - fail: {error: Declined, message: card declined}
    onError:
      - setStatus: {declined: "${ error.type }"}
  - return: {prices: "${ map(both[0].prices, .price) }", by: "${ both[1].by }"}
`))
	e.run(interpreter.EngineOptions{Consumer: "lang3"})
	e.start("Branches", "br-1", []map[string]any{{"qty": 1}, {"qty": 2}, {"qty": 5}})
	waitPending(t, e, "br-1", func(p *interpreter.Pending) bool {
		return p.Kind == interpreter.WaitBranches && p.StepID == "quote" && p.Done == 1
	})
	e.raise("br-1", "Approved", "ada")
	st := e.waitDone("br-1", 20*time.Second)
	if st.Status != interpreter.StatusCompleted {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	jsonEq(t, "output", st.Output, `{"prices":[3,6,15],"by":"ada"}`)
	jsonEq(t, "custom status", st.CustomStatus, `{"declined":"Declined"}`)
	// The cancelled branch's timer is gone from Redis.
	if n := e.client.ZCard(context.Background(), "cairn:{"+fmt.Sprint(partitionOf(e, "br-1"))+"}:timers").Val(); n != 0 {
		t.Fatalf("%d timers left in the partition", n)
	}
}

// partitionOf finds the partition of an instance from its key.
func partitionOf(e *env, id string) int {
	keys := e.keys("cairn:{*}:inst:" + id)
	if len(keys) != 1 {
		e.t.Fatalf("instance keys %v", keys)
	}
	var p int
	fmt.Sscanf(keys[0], "cairn:{%d}", &p)
	return p
}

// TestFanOutSurvivesEngineCrash kills the engine (a child process) in the
// middle of a parallel forEach of 100 branches, each running two
// activities around a timer; a new engine takes over the work the dead
// one held, and the join still collects every result, in order.
func TestFanOutSurvivesEngineCrash(t *testing.T) {
	e := newEnv(t)
	e.deploy("fanout.yaml", []byte(`
name: FanOut
activities:
  Work: {expr: "input * 2"}
steps:
  - forEach:
      items: ${ 1..100 }
      parallel: true
      steps:
        - activity: Work
          input: ${ item }
          result: doubled
        - wait: {duration: 300ms}
        - activity: Work
          input: ${ doubled }
          result: quadrupled
      result: out
  - return: ${ map(out, .quadrupled) }
`))
	e.start("FanOut", "fan-1", nil)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), engineEnv+"="+e.redisAddrs())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once half of the first wave of activities has run.
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for e.client.HLen(ctx, "e2e:executions").Val() < 50 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the child engine never got going")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	st, err := e.store.FetchStatus(ctx, "fan-1")
	if err != nil {
		t.Fatal(err)
	}
	ran := e.client.HLen(ctx, "e2e:executions").Val()
	if st.Status.Terminal() || st.Pending == nil || st.Pending.Done >= 100 {
		t.Fatalf("the crash was not in the middle of the fan-out: %s %+v", st.Status, st.Pending)
	}
	t.Logf("engine killed after %d activity executions; %d of 100 branches had joined", ran, st.Pending.Done)

	survivor, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() {
		interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "survivor", ReclaimAfter: reclaimAfter}).Run(survivor)
		done <- struct{}{}
	}()
	go func() {
		runActivitiesCounting(survivor, e.store, e.cat, "survivor-act", reclaimAfter, countExecution(e.client))
		done <- struct{}{}
	}()
	defer func() { cancel(); <-done; <-done }()
	st = e.waitDone("fan-1", 60*time.Second)
	if st.Status != interpreter.StatusCompleted {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	want := make([]string, 100)
	for i := range want {
		want[i] = fmt.Sprint(4 * (i + 1))
	}
	jsonEq(t, "output", st.Output, "["+strings.Join(want, ",")+"]")
	execs := e.client.HGetAll(ctx, "e2e:executions").Val()
	dup := 0
	for _, v := range execs {
		var c int
		fmt.Sscan(v, &c)
		dup += c - 1
	}
	if len(execs) != 200 {
		t.Fatalf("%d distinct activity tasks ran, want 200", len(execs))
	}
	t.Logf("joined all 100 branches in order after the crash; 200 activity tasks, %d duplicate executions", dup)
}

// TestContinueAsNewForTenThousandGenerations runs a workflow that continues
// as new 10,000 times (one activity per run) and checks that Redis memory
// stays flat: the state is reset each run and the history stream is
// trimmed, so generation 10,000 costs what generation 1,000 did.
func TestContinueAsNewForTenThousandGenerations(t *testing.T) {
	// On a cluster the store polls the streams (a read every 50 ms), so
	// these 10,000 strictly sequential generations would run at about 10
	// a second; used_memory would also be one master's only.
	redistest.SkipOnCluster(t, "it reads one server's used_memory, and its 10,000 sequential generations take about 17 min at a cluster's polled reads (10 generations/s measured)")
	gens := 10_000
	if testing.Short() {
		gens = 1_000
	}
	e := newEnv(t)
	e.deploy("forever.yaml", []byte(`
name: Forever
activities:
  Next: {expr: "input + 1"}
steps:
  - activity: Next
    input: ${ input }
    result: n
  - setStatus: {generation: "${ n }"}
  - if: n >= `+strconv.Itoa(gens)+`
    return: ${ n }
  - continueAsNew: {input: "${ n }"}
`))
	ctx := context.Background()
	// trim drops the acknowledged work the engine trims every few seconds:
	// measured before trimming, the figures would count however much work
	// the last few seconds left, which grows with the machine's speed.
	trim := func() {
		for p := 0; p < e.store.Partitions(); p++ {
			if _, err := e.store.TrimWork(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	used := func() int64 {
		trim()
		e.client.Do(ctx, "MEMORY", "PURGE")
		for _, line := range strings.Split(e.client.Info(ctx, "memory").Val(), "\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return n
			}
		}
		t.Fatal("no used_memory")
		return 0
	}
	// keysBytes is what the instance's own keys and the streams hold once
	// acknowledged work is trimmed (the engine trims every few seconds).
	keysBytes := func() (total int64, hist int64) {
		trim()
		for _, k := range e.keys("cairn:{*}:*") {
			n := e.client.MemoryUsage(ctx, k).Val()
			total += n
			if strings.Contains(k, ":hist:") {
				hist = e.client.XLen(ctx, k).Val()
			}
		}
		return total, hist
	}
	e.run(interpreter.EngineOptions{Consumer: "gen"})
	before := used()
	start := time.Now()
	e.start("Forever", "forever", 0)
	// Sample at a tenth of the way.
	waitStatus := func(min int) {
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			st, err := e.store.FetchStatus(ctx, "forever")
			if err == nil && (st.Status.Terminal() || generationOf(st.CustomStatus) >= min) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("generation %d not reached", min)
	}
	waitStatus(gens / 10)
	early := used()
	earlyKeys, earlyHist := keysBytes()
	waitStatus(gens / 2)
	middle := used()
	st := e.waitDone("forever", 10*time.Minute)
	elapsed := time.Since(start)
	if st.Status != interpreter.StatusCompleted {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	jsonEq(t, "output", st.Output, strconv.Itoa(gens))
	after := used()
	lateKeys, lateHist := keysBytes()
	t.Logf("%d generations in %s (%.0f/s)", gens, elapsed.Round(time.Millisecond), float64(gens)/elapsed.Seconds())
	t.Logf("used_memory: %d before, %d at generation %d, %d at %d, %d after generation %d (growth over the last %d generations: %+d bytes)",
		before, early, gens/10, middle, gens/2, after, gens, gens-gens/10, after-early)
	t.Logf("cairn keys (MEMORY USAGE summed): %d bytes at generation %d, %d at the end; history stream %d then %d entries",
		earlyKeys, gens/10, lateKeys, earlyHist, lateHist)
	if lateHist > 300 {
		t.Fatalf("history stream has %d entries; it should be trimmed to about 100", lateHist)
	}
	if lateKeys > earlyKeys+64<<10 {
		t.Fatalf("the keys grew from %d to %d bytes between generation %d and %d", earlyKeys, lateKeys, gens/10, gens)
	}
	// Measured after trimming, the growth is a few KB either way; a byte
	// kept per generation (a field, a stream entry) would pass 256 KiB.
	if after-early > 256<<10 {
		t.Fatalf("used_memory grew by %d bytes over %d generations", after-early, gens-gens/10)
	}
}

func generationOf(status []byte) int {
	var s struct{ Generation int }
	json.Unmarshal(status, &s)
	return s.Generation
}

func TestCallOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("ship.yaml", []byte(`
name: Ship
input: {type: object, required: [order]}
activities:
  Label: {expr: "'L-' + input"}
steps:
  - if: input.order == "bad"
    fail: {error: OutOfStock, message: "nothing for ${ input.order }"}
  - if: input.order == "slow"
    wait: {event: Never}
  - activity: Label
    input: ${ input.order }
    result: label
  - setStatus: {label: "${ label }"}
  - return: {label: "${ label }", id: "${ instance.id }"}
`))
	e.deploy("orders.yaml", []byte(`
name: Orders
steps:
  - forEach:
      items: ${ input }
      as: order
      parallel: true
      steps:
        - try:
            steps:
              - call: Ship
                input: {order: "${ order }"}
                result: shipment
            catch:
              steps:
                - set: {problem: "${ error.data.type }"}
      result: out
  - return: ${ out }
`))
	e.run(interpreter.EngineOptions{Consumer: "lang4"})

	e.start("Orders", "ord", []string{"a", "bad", "b"})
	st := e.waitDone("ord", 20*time.Second)
	if st.Status != interpreter.StatusCompleted {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	jsonEq(t, "output", st.Output, `[{"shipment":{"label":"L-a","id":"ord:1"}},{"problem":"OutOfStock"},{"shipment":{"label":"L-b","id":"ord:5"}}]`)
	// The children are instances of their own, visible through the API.
	child, err := e.store.FetchStatus(context.Background(), "ord:1")
	if err != nil || child.Name != "Ship" || child.Status != interpreter.StatusCompleted {
		t.Fatalf("child: %+v %v", child, err)
	}
	jsonEq(t, "child's custom status", child.CustomStatus, `{"label":"L-a"}`)
	child, _ = e.store.FetchStatus(context.Background(), "ord:3")
	if child.Status != interpreter.StatusFailed {
		t.Fatalf("failed child: %+v", child)
	}
}

func TestCallTerminationAndMissingWorkflowOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("ship.yaml", []byte(`
name: Ship
steps:
  - wait: {event: Never}
`))
	e.deploy("parent.yaml", []byte(`
name: Parent
steps:
  - call: Ship
  - return: never
`))
	e.deploy("missing.yaml", []byte(`
name: Missing
steps:
  - call: NotDeployed
    onError:
      - return: ${ error }
`))
	e.run(interpreter.EngineOptions{Consumer: "lang5"})
	e.start("Parent", "par", nil)
	waitPending(t, e, "par", func(p *interpreter.Pending) bool { return p.Kind == interpreter.WaitChild })
	e.waitFor("par:1", "Never")
	if err := e.store.SendControl(context.Background(), "par", interpreter.Event{Kind: interpreter.EvTerminate, Time: time.Now(), Reason: "enough"}); err != nil {
		t.Fatal(err)
	}
	if st := e.waitDone("par", 20*time.Second); st.Status != interpreter.StatusTerminated {
		t.Fatalf("parent %s", st.Status)
	}
	if st := e.waitDone("par:1", 20*time.Second); st.Status != interpreter.StatusTerminated {
		t.Fatalf("child %s %s", st.Status, st.Output)
	}

	e.start("Missing", "miss", nil)
	st := e.waitDone("miss", 20*time.Second)
	if st.Status != interpreter.StatusCompleted || !strings.Contains(string(st.Output), "NotDeployed is not deployed") {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
}

// forgetfulStore loses the child instances the engine creates, as if the
// engine had died between committing a call step and creating its child.
type forgetfulStore struct{ interpreter.Store }

func (forgetfulStore) CreateInstance(context.Context, interpreter.NewInstance) error { return nil }

func TestCallRecoversALostChildCreation(t *testing.T) {
	e := newEnv(t)
	e.deploy("ship.yaml", []byte(`
name: Ship
steps:
  - return: shipped
`))
	e.deploy("parent.yaml", []byte(`
name: Parent
steps:
  - call: Ship
    result: r
  - return: ${ r }
`))
	ctx, cancel := context.WithCancel(context.Background())
	blind := interpreter.NewEngine(forgetfulStore{e.store}, e.cat, interpreter.EngineOptions{Consumer: "blind"})
	stopped := make(chan struct{})
	go func() { blind.Run(ctx); close(stopped) }()
	e.start("Parent", "lost", nil)
	waitPending(t, e, "lost", func(p *interpreter.Pending) bool { return p.Kind == interpreter.WaitChild })
	cancel()
	<-stopped
	if _, err := e.store.FetchStatus(context.Background(), "lost:1"); !errors.Is(err, interpreter.ErrNotFound) {
		t.Fatalf("the child exists already: %v", err)
	}
	// A working engine: the parent's check (after 10 s) creates the child.
	e.run(interpreter.EngineOptions{Consumer: "sighted"})
	st := e.waitDone("lost", 30*time.Second)
	jsonEq(t, "output", st.Output, `"shipped"`)
}

func TestBatchShippingExample(t *testing.T) {
	e := newEnv(t)
	e.deployFile("../../workflows/batch-shipping.yaml")
	e.run(interpreter.EngineOptions{Consumer: "lang6"})
	orders := []map[string]any{{"id": "a", "qty": 1}, {"id": "b", "qty": 20}, {"id": "c", "qty": 3}}
	e.start("BatchShipping", "batch-1", map[string]any{"orders": orders})
	waitPending(t, e, "batch-1", func(p *interpreter.Pending) bool { return len(p.Events) == 2 })
	st, _ := e.store.FetchStatus(context.Background(), "batch-1")
	jsonEq(t, "custom status", st.CustomStatus, `{"stage":"approval","reserved":2,"failed":1}`)
	e.raise("batch-1", "Approve", nil)
	st = e.waitDone("batch-1", 20*time.Second)
	jsonEq(t, "output", st.Output, `[1,"Error",3]`)

	e.start("BatchShipping", "batch-2", map[string]any{"orders": orders[:1]})
	waitPending(t, e, "batch-2", func(p *interpreter.Pending) bool { return len(p.Events) == 2 })
	e.raise("batch-2", "Cancel", "changed my mind")
	st = e.waitDone("batch-2", 20*time.Second)
	if st.Status != interpreter.StatusFailed || !strings.Contains(string(st.Output), "BatchCancelled") {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
}
