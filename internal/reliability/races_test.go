package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// collect is a workflow that waits n times for event E and returns the n
// payloads in the order it consumed them.
func collect(name string, n int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "name: %s\nsteps:\n", name)
	vars := make([]string, n)
	for i := range n {
		vars[i] = fmt.Sprintf("e%d", i)
		fmt.Fprintf(&sb, "  - wait: {event: E, result: %s}\n", vars[i])
	}
	fmt.Fprintf(&sb, "  - return: ${ [%s] }\n", strings.Join(vars, ", "))
	return sb.String()
}

const raceDone = `
name: RaceDone
steps:
  - wait: {event: Go, result: got}
  - return: done
`

// TestRaces runs the races of issue 8 on one API process and two engine
// processes sharing one Redis (so the engines also race each other for
// every instance's work): 100 concurrent raiseEvent calls of one name into
// one instance, terminate racing completion, and suspend/resume racing
// events. The invariants: no event lost or applied twice (each work item is
// exactly one transition, so the final revision is known), one terminal
// state that is legal for what was sent, FIFO order of one sender's events.
// Under go test -race the cairn processes run with the race detector and
// any report fails the test.
func TestRaces(t *testing.T) {
	rs := redistest.Start(t)
	wf := writeWorkflows(t, map[string]string{
		"Collect100": collect("Collect100", 100),
		"Collect10":  collect("Collect10", 10),
		"RaceDone":   raceDone,
	})
	book := &logBook{}
	api := startCairn(t, book, serveOpts{redis: rs.URL(), workflows: wf, role: "api"})
	startCairn(t, book, serveOpts{redis: rs.URL(), role: "engine"})
	startCairn(t, book, serveOpts{redis: rs.URL(), role: "engine"})
	c := newClient(api.url, "")

	t.Run("100 concurrent events of one name into one instance", func(t *testing.T) {
		// One instance gets them while it waits, the other right after it
		// was created, while the engines apply its start: those that come
		// first are buffered.
		ids := []string{"c100-waiting", "c100-starting"}
		start := func(id string) {
			if r, err := c.do("POST", df+"/orchestrators/Collect100/"+id, "application/json", nil); err != nil || r.code != 202 {
				t.Errorf("start %s: %v %v", id, r, err)
			}
		}
		start(ids[0])
		waitStatus(t, c, ids[0], func(s *status) bool { return s.RuntimeStatus == "Running" })
		var wg sync.WaitGroup
		fire := func(id string) {
			gate := make(chan struct{})
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					r, err := c.do("POST", df+"/instances/"+id+"/raiseEvent/E", "application/json", []byte(fmt.Sprint(i)))
					if err != nil || r.code != http.StatusAccepted {
						t.Errorf("raise %d into %s: %v %v", i, id, r, err)
					}
				}()
			}
			close(gate)
		}
		fire(ids[0])
		start(ids[1])
		fire(ids[1])
		wg.Wait()
		for _, id := range ids {
			st, err := c.waitDone(id)
			if err != nil {
				t.Fatal(err)
			}
			checkPermutation(t, id, st, 100, true)
		}
	})

	t.Run("terminate racing completion", func(t *testing.T) {
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			id := fmt.Sprintf("td-%02d", i)
			if r := c.must(t, "POST", df+"/orchestrators/RaceDone/"+id, "application/json", nil); r.code != 202 {
				t.Fatalf("start %s: %v", id, r)
			}
		}
		for i := range n {
			id := fmt.Sprintf("td-%02d", i)
			waitStatus(t, c, id, func(s *status) bool { return s.RuntimeStatus == "Running" })
			gate := make(chan struct{})
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-gate
				r, err := c.do("POST", df+"/instances/"+id+"/raiseEvent/Go", "application/json", []byte(`1`))
				if err != nil || (r.code != 202 && r.code != 410) {
					t.Errorf("raise into %s: %v %v", id, r, err)
				}
			}()
			go func() {
				defer wg.Done()
				<-gate
				r, err := c.do("POST", df+"/instances/"+id+"/terminate?reason=stopped", "", nil)
				if err != nil || (r.code != 202 && r.code != 410) {
					t.Errorf("terminate %s: %v %v", id, r, err)
				}
			}()
			close(gate)
		}
		wg.Wait()
		outcomes := map[string]int{}
		for i := range n {
			id := fmt.Sprintf("td-%02d", i)
			st, err := c.waitDone(id)
			if err != nil {
				t.Fatal(err)
			}
			outcomes[st.RuntimeStatus]++
			want := map[string]int{"ExecutionStarted": 1}
			switch st.RuntimeStatus {
			case "Completed":
				if !jsonEqual(st.Output, []byte(`"done"`)) {
					t.Errorf("%s completed with %s", id, st.Output)
				}
				want["ExecutionTerminated"], want["EventRaised"] = 0, 1
			case "Terminated":
				if !jsonEqual(st.Output, []byte(`"stopped"`)) {
					t.Errorf("%s terminated with %s", id, st.Output)
				}
				want["ExecutionCompleted"] = 0
			default:
				t.Errorf("%s ended %s %s", id, st.RuntimeStatus, st.Output)
				continue
			}
			if msg := historyProblem(st.History, want); msg != "" {
				t.Errorf("%s: %s%s", id, msg, historyText(st.History))
			}
		}
		t.Logf("terminate racing completion: %d instances: %v", n, outcomes)
	})

	t.Run("suspend and resume racing events", func(t *testing.T) {
		// Two engines share every partition's work (a consumer group hands
		// each item to one of them), yet the instance applies its messages
		// in the order the store accepted them.
		suspendResumeRace(t, c, "sr2")
	})

	api.stop(t)
	book.check(t)

	// And with one engine.
	t.Run("suspend and resume racing events, one engine", func(t *testing.T) {
		rs := redistest.Start(t)
		one := startCairn(t, book, serveOpts{redis: rs.URL(), workflows: wf})
		suspendResumeRace(t, newClient(one.url, ""), "sr1")
		one.stop(t)
		book.check(t)
	})
}

// suspendResumeRace starts instances that wait for ten events each; for
// each, one sender suspends and resumes it five times while another raises
// the ten events, each sender one request after the other. The events must
// arrive in the order sent, each once, and the suspends and resumes must
// alternate (a suspended instance cannot complete).
func suspendResumeRace(t *testing.T, c *client, prefix string) {
	const n, events, cycles = 20, 10, 5
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		if r := c.must(t, "POST", df+"/orchestrators/Collect10/"+id, "application/json", nil); r.code != 202 {
			t.Fatalf("start %s: %v", id, r)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range cycles {
				for _, op := range []string{"suspend", "resume"} {
					r, err := c.do("POST", df+"/instances/"+id+"/"+op, "", nil)
					if err != nil || (r.code != 202 && r.code != 410) {
						t.Errorf("%s %s: %v %v", op, id, r, err)
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			for e := range events {
				r, err := c.do("POST", df+"/instances/"+id+"/raiseEvent/E", "application/json", []byte(fmt.Sprint(e)))
				if err != nil || r.code != 202 {
					t.Errorf("raise %d into %s: %v %v", e, id, r, err)
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		st, err := c.waitDone(id)
		if err != nil {
			t.Fatal(err)
		}
		if st.RuntimeStatus != "Completed" || !jsonEqual(st.Output, []byte(`[0,1,2,3,4,5,6,7,8,9]`)) {
			t.Errorf("%s: %s %s, want Completed with the events in the order sent", id, st.RuntimeStatus, st.Output)
		}
		count := map[string]int{}
		for _, l := range st.History {
			count[l.EventType]++
		}
		if count["ExecutionSuspended"] != count["ExecutionResumed"] {
			t.Errorf("%s: %d suspends and %d resumes applied", id, count["ExecutionSuspended"], count["ExecutionResumed"])
		}
		if msg := historyProblem(st.History, map[string]int{"EventRaised": events}); msg != "" {
			t.Errorf("%s: %s%s", id, msg, historyText(st.History))
		}
	}
}

// checkPermutation wants a Completed instance whose output holds 0..n-1,
// each once; with exactRevision, at revision n+1: one transition for the
// start and one per event, so none was lost or applied twice.
func checkPermutation(t *testing.T, id string, st *status, n int, exactRevision bool) {
	t.Helper()
	var got []int
	if st.RuntimeStatus != "Completed" || json.Unmarshal(st.Output, &got) != nil || len(got) != n {
		t.Errorf("%s: %s %s", id, st.RuntimeStatus, st.Output)
		return
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i {
			t.Errorf("%s: event %d is missing or repeated: %v", id, i, got)
			return
		}
	}
	if exactRevision && st.Revision != int64(n+1) {
		t.Errorf("%s: revision %d after %d events, want %d (one transition per work item)", id, st.Revision, n, n+1)
	}
	if msg := historyProblem(st.History, nil); msg != "" {
		t.Errorf("%s: %s", id, msg)
	}
}

// TestEnginesStealingOneInstance runs two engines in this process on one
// Redis with a lease so short that they constantly take over each other's
// work items (XAUTOCLAIM) while 100 events of one name arrive at once: the
// same work item is then applied by both, and the revision check and the
// acknowledgement inside the commit must let exactly one of them through.
func TestEnginesStealingOneInstance(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	store := redisstore.New(rdb, redisstore.Options{Partitions: 4})
	ctx := context.Background()
	if err := store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	def, err := dsl.Parse("collect.yaml", []byte(collect("Collect100", 100)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutDefinition(ctx, def.Name, def.Hash, def.Source, time.Now()); err != nil {
		t.Fatal(err)
	}
	cat := interpreter.NewCatalog(store)
	cat.Add(def)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		eng := interpreter.NewEngine(store, cat, interpreter.EngineOptions{Consumer: name, ReclaimAfter: 20 * time.Millisecond, Batch: 8})
		wg.Add(1)
		go func() { defer wg.Done(); _ = eng.Run(runCtx) }()
	}
	defer func() { stop(); wg.Wait() }()

	ids := []string{"steal-1", "steal-2", "steal-3"}
	for _, id := range ids {
		if err := store.CreateInstance(ctx, interpreter.Instantiate(def, interpreter.InstanceID(id), nil, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	var raise sync.WaitGroup
	gate := make(chan struct{})
	for _, id := range ids {
		for i := range 100 {
			raise.Add(1)
			go func() {
				defer raise.Done()
				<-gate
				if err := store.RaiseEvent(ctx, interpreter.InstanceID(id), "E", []byte(fmt.Sprint(i)), time.Now()); err != nil {
					t.Errorf("raise: %v", err)
				}
			}()
		}
	}
	close(gate)
	raise.Wait()
	for _, id := range ids {
		deadline := time.Now().Add(waitLimit)
		var st *interpreter.InstanceStatus
		for {
			st, err = store.FetchStatus(ctx, interpreter.InstanceID(id))
			if err == nil && st.Status.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not finished: %+v %v", id, st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		h, err := store.FetchHistory(ctx, interpreter.InstanceID(id))
		if err != nil {
			t.Fatal(err)
		}
		var lines []historyLine
		for _, e := range h {
			lines = append(lines, historyLine{EventType: e.Type, Timestamp: e.Timestamp.String(), StepID: string(e.StepID), Name: e.Name, Data: e.Data, Attempt: e.Attempt, Reason: e.Reason})
		}
		checkPermutation(t, id, &status{RuntimeStatus: string(st.Status), Output: st.Output, Revision: st.Revision, History: lines}, 100, true)
	}
}
