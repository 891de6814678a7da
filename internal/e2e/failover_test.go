package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redisproc"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// servedClusterClient is the client `cairn serve --redis A,B,C` builds
// (redisopts.go): a cluster client over the seeds with serve's options.
// The failover handling itself is redisstore's (New), so it is the same
// here as there.
func servedClusterClient(addrs []string) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 addrs,
		IsClusterMode:         true,
		Protocol:              2,
		DisableIdentity:       true,
		ContextTimeoutEnabled: true,
		PoolSize:              128,
	})
}

// instancePartition is redisstore's partition of an instance (fnv32a of
// the id modulo P, keys.go); the test checks it against the keys it finds.
func instancePartition(id string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// failoverRun records what the clients of TestMasterFailover saw.
type failoverRun struct {
	affected map[int]bool // partitions on the killed master

	mu        sync.Mutex
	successes []time.Time // answers (not 5xx) to calls on affected partitions
	fails     int         // 5xx answers and transport errors, every partition
	samples   []string    // a few of them
	problems  []string    // acknowledged calls without their effect, odd answers
	instances []*foInstance
}

type foInstance struct {
	id       string
	part     int
	raisedAt time.Time // when the raise was acknowledged
	sse      bool      // watched through the SSE stream
	wait     bool      // started with start-and-wait
}

func (r *failoverRun) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// call sends one request, retrying 5xx answers and transport errors (as
// the client does) until another answer comes or ctx ends; every
// answer on an affected partition is recorded with its time.
func (r *failoverRun) call(ctx context.Context, hc *http.Client, method, url string, part int, body []byte) (int, []byte, int) {
	for tries := 1; ; tries++ {
		req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		var b []byte
		if err == nil {
			b, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		now := time.Now()
		if err == nil && res.StatusCode < 500 {
			if r.affected[part] {
				r.mu.Lock()
				r.successes = append(r.successes, now)
				r.mu.Unlock()
			}
			return res.StatusCode, b, tries
		}
		r.mu.Lock()
		r.fails++
		if len(r.samples) < 5 {
			if err != nil {
				r.samples = append(r.samples, fmt.Sprintf("%s %s: %v", method, url, err))
			} else {
				r.samples = append(r.samples, fmt.Sprintf("%s %s: %d %s", method, url, res.StatusCode, b))
			}
		}
		r.mu.Unlock()
		if ctx.Err() != nil {
			return 0, nil, tries
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gapAfter is the longest stretch after t without an answer on an affected
// partition, up to end.
func (r *failoverRun) gapAfter(t, end time.Time) time.Duration {
	r.mu.Lock()
	s := slices.Clone(r.successes)
	r.mu.Unlock()
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	prev, gap := t, time.Duration(0)
	for _, x := range s {
		if x.After(prev) {
			gap = max(gap, x.Sub(prev))
			prev = x
		}
	}
	return max(gap, end.Sub(prev))
}

// TestMasterFailover runs the whole stack (store on a cluster client,
// engine, activity runtime, HTTP API) on a Redis Cluster while clients
// start ReserveTicket instances, raise their events, read their status,
// follow some through the SSE stream and start others with start-and-wait;
// one master is SIGKILLed mid-run. Every acknowledged start and raise must
// take effect, every instance complete, and calls to the lost master's
// partitions must be answered again soon after its replica is promoted.
func TestMasterFailover(t *testing.T) {
	redistest.SkipOnCluster(t, "it starts a cluster of its own to SIGKILL a master, which the shared cluster must not lose; the default run covers it")
	const (
		clients  = 6
		before   = 2 * time.Second // of load before the kill
		after    = 4 * time.Second // of load after the promotion
		gapBound = 10 * time.Second
	)
	began := time.Now()
	cl := redistest.StartCluster(t, redistest.ClusterOpts{Args: []string{"--cluster-require-full-coverage", "no"}})
	t.Logf("cluster healthy after %s", time.Since(began).Round(time.Millisecond))

	rdb := servedClusterClient(cl.Addrs())
	t.Cleanup(func() { rdb.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := redisstore.New(rdb, redisstore.Options{Logger: quiet, Durability: redisstore.DurabilityReplica}) // the cluster default of cairn serve
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if err := store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../workflows/reserve-ticket.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := dsl.Parse("reserve-ticket.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutDefinition(ctx, def.Name, def.Hash, def.Source, time.Now()); err != nil {
		t.Fatal(err)
	}
	cat := interpreter.NewCatalog(store)
	cat.Add(def)

	// Wired as cairn serve wires them.
	runCtx, stopRun := context.WithCancel(context.Background())
	var running sync.WaitGroup
	reg := activity.NewRegistry()
	eng := interpreter.NewEngine(store, cat, interpreter.EngineOptions{
		Interpreter: interpreter.New(interpreter.Options{LocalActivity: reg.Has}), Logger: quiet,
	})
	rt := activity.NewRuntime(activity.Direct(store, eng), cat, reg, activity.Options{Consumer: eng.Consumer(), Logger: quiet})
	running.Add(2)
	go func() { defer running.Done(); eng.Run(runCtx) }()
	go func() { defer running.Done(); rt.Run(runCtx) }()
	api := httptest.NewServer(httpapi.New(httpapi.Config{Backend: store, Catalog: cat, Logger: quiet}))
	defer func() { api.Close(); stopRun(); running.Wait() }()
	hc := &http.Client{Timeout: 15 * time.Second}

	// The master to kill serves partition 0; the partitions it serves are
	// the ones whose calls fail until a replica takes over.
	slotOf := func(p int) int { return redisproc.KeySlot("cairn:{" + strconv.Itoa(p) + "}:x") }
	victim := cl.MasterOf(t, slotOf(0))
	run := &failoverRun{affected: map[int]bool{}}
	for p := 0; p < store.Partitions(); p++ {
		if cl.MasterOf(t, slotOf(p)) == victim {
			run.affected[p] = true
		}
	}
	t.Logf("killing node %d, master of partitions %v", victim, slices.Sorted(maps.Keys(run.affected)))

	var stopLoad atomic.Bool
	var clientsDone, watchers sync.WaitGroup
	var sseDone, sseReconnects, waitOK, waitOther atomic.Int64
	base := api.URL + "/runtime/webhooks/durabletask"
	for c := 0; c < clients; c++ {
		clientsDone.Add(1)
		go func() {
			defer clientsDone.Done()
			for i := 0; !stopLoad.Load() && ctx.Err() == nil; i++ {
				id := fmt.Sprintf("fo-%d-%d", c, i)
				in := &foInstance{id: id, part: instancePartition(id, store.Partitions()), sse: i%8 == 3, wait: i%8 == 6}
				startURL := base + "/orchestrators/ReserveTicket/" + id
				body := []byte(strconv.Quote("user-" + id))
				if in.wait {
					// Start-and-wait: the answer comes when the instance is
					// done (the event is raised below), through the
					// subscription the API takes before creating it.
					watchers.Add(1)
					go func() {
						defer watchers.Done()
						code, b, tries := run.call(ctx, hc, "POST", startURL+"?timeout=30", in.part, body)
						switch {
						case code == http.StatusOK && strings.TrimSpace(string(b)) == "true":
							waitOK.Add(1)
						case code == http.StatusConflict && tries > 1, code == http.StatusAccepted:
							waitOther.Add(1) // a retry after a lost answer, or not done in time
						default:
							run.problem("start-and-wait %s: %d %s after %d tries", id, code, b, tries)
						}
					}()
				} else {
					code, b, tries := run.call(ctx, hc, "POST", startURL, in.part, body)
					// 409 on a retry: an earlier attempt did create it.
					if code != http.StatusAccepted && !(code == http.StatusConflict && tries > 1) {
						run.problem("start %s: %d %s after %d tries", id, code, b, tries)
						continue
					}
				}
				if in.sse {
					watchers.Add(1)
					go func() { defer watchers.Done(); watchSSE(ctx, hc, run, api.URL, in, &sseDone, &sseReconnects) }()
				}
				// The event: a 404 is only expected while a start-and-wait
				// has not created its instance yet, a 410 only on a retry
				// (an attempt whose answer was lost, a 5xx, may have been
				// applied and finished the instance: the drain below checks
				// that it completed with the event's value).
				for {
					code, b, tries := run.call(ctx, hc, "POST", base+"/instances/"+id+"/raiseEvent/BookingConfirmed", in.part, []byte("true"))
					if code == http.StatusAccepted {
						in.raisedAt = time.Now()
						break
					}
					if code == http.StatusGone && tries > 1 {
						break
					}
					if code != http.StatusNotFound || !in.wait || ctx.Err() != nil {
						run.problem("raise %s: %d %s", id, code, b)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				run.call(ctx, hc, "GET", base+"/instances/"+id, in.part, nil)
				// About 150 instances a second from all clients, the rate
				// of the run.
				time.Sleep(30 * time.Millisecond)
				run.mu.Lock()
				run.instances = append(run.instances, in)
				run.mu.Unlock()
			}
		}()
	}

	// Instances on the lost partitions whose SSE streams are open across
	// the failover: their subscriptions are on the master that dies, and
	// their events come only after the promotion, so each stream must
	// move to the new master to tell of the completion.
	var held []*foInstance
	for i := 0; len(held) < 4; i++ {
		id := fmt.Sprintf("fo-held-%d", i)
		if p := instancePartition(id, store.Partitions()); run.affected[p] {
			in := &foInstance{id: id, part: p, sse: true}
			if code, b, _ := run.call(ctx, hc, "POST", base+"/orchestrators/ReserveTicket/"+id, p, []byte(`"held"`)); code != http.StatusAccepted {
				t.Fatalf("start %s: %d %s", id, code, b)
			}
			held = append(held, in)
			watchers.Add(1)
			go func() { defer watchers.Done(); watchSSE(ctx, hc, run, api.URL, in, &sseDone, &sseReconnects) }()
		}
	}

	time.Sleep(before)
	killedAt := time.Now()
	killed, promoted := cl.KillMasterOf(t, slotOf(0))
	promotedAt := time.Now()
	t.Logf("node %d killed; node %d promoted %s later", killed, promoted, promotedAt.Sub(killedAt).Round(time.Millisecond))
	for _, in := range held {
		code, b, tries := run.call(ctx, hc, "POST", base+"/instances/"+in.id+"/raiseEvent/BookingConfirmed", in.part, []byte("true"))
		if code != http.StatusAccepted && !(code == http.StatusGone && tries > 1) {
			run.problem("raise %s: %d %s", in.id, code, b)
		}
		in.raisedAt = time.Now()
		run.mu.Lock()
		run.instances = append(run.instances, in)
		run.mu.Unlock()
	}
	// Keep the load on until the lost partitions have been answered again
	// for a while (bounded, so a client that never recovers fails the gap).
	for end := promotedAt.Add(70 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if time.Since(promotedAt) >= after && run.gapAfter(promotedAt, time.Now()) < time.Second {
			break
		}
	}
	stopLoad.Store(true)
	loadEnd := time.Now()
	clientsDone.Wait()
	gap := run.gapAfter(promotedAt, loadEnd)

	// Every acknowledged instance exists and completes with its event.
	var lag, slowest time.Duration
	var lagID, slowestID string
	drainFrom := time.Now()
	for _, in := range run.instances {
		var st *interpreter.InstanceStatus
		for {
			st, err = store.FetchStatus(ctx, interpreter.InstanceID(in.id))
			if err == nil && st.Status.Terminal() || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || st == nil {
			run.problem("instance %s (partition %d): not readable: %v", in.id, in.part, err)
			continue
		}
		if st.Status != interpreter.StatusCompleted || strings.TrimSpace(string(st.Output)) != "true" {
			run.problem("instance %s (partition %d): %s with output %s", in.id, in.part, st.Status, st.Output)
			continue
		}
		if d := st.LastUpdatedTime.Sub(in.raisedAt); !in.raisedAt.IsZero() && d > slowest {
			slowest, slowestID = d, in.id
		}
		if !in.raisedAt.IsZero() && run.affected[in.part] && in.raisedAt.After(promotedAt) {
			if d := st.LastUpdatedTime.Sub(in.raisedAt); d > lag {
				lag, lagID = d, in.id
			}
		}
	}
	watchers.Wait()
	t.Logf("all done %s after the load ended; slowest event-to-completion of all: %s (%s)",
		time.Since(drainFrom).Round(time.Millisecond), slowest.Round(time.Millisecond), slowestID)
	// The partition the test computes is the store's: the instance's key
	// is in the slot of that partition.
	if n := len(run.instances); n > 0 {
		in := run.instances[n-1]
		key := "cairn:{" + strconv.Itoa(in.part) + "}:inst:" + in.id
		if x, err := rdb.Exists(ctx, key).Result(); err != nil || x != 1 {
			t.Errorf("instance %s not under key %s (%d, %v): the test's partitionOf differs from redisstore's", in.id, key, x, err)
		}
	}

	affected := 0
	for _, in := range run.instances {
		if run.affected[in.part] {
			affected++
		}
	}
	t.Logf("%d instances (%d on the killed master's partitions); %d answers were 5xx or transport errors, e.g. %q",
		len(run.instances), affected, run.fails, run.samples)
	t.Logf("longest stretch after the promotion without an answer on the killed master's partitions: %s (bound %s, target 2s)",
		gap.Round(time.Millisecond), gapBound)
	t.Logf("longest event-to-completion after the promotion on those partitions: %s (%s)", lag.Round(time.Millisecond), lagID)
	t.Logf("SSE streams done %d, reconnects %d; start-and-wait answered 200 %d, otherwise %d",
		sseDone.Load(), sseReconnects.Load(), waitOK.Load(), waitOther.Load())
	for i, p := range run.problems {
		if i == 20 {
			t.Errorf("... and %d more", len(run.problems)-i)
			break
		}
		t.Error(p)
	}
	if affected == 0 {
		t.Error("no instance ran on the killed master's partitions")
	}
	if gap > gapBound {
		t.Errorf("calls to the killed master's partitions went unanswered for %s after the promotion; the bound is %s", gap, gapBound)
	}
	if lag > gapBound {
		t.Errorf("instance %s completed %s after its event; the bound is %s", lagID, lag, gapBound)
	}
}

// watchSSE follows an instance's SSE status stream until it says the
// instance completed, reconnecting (as an EventSource does) when the
// stream ends before.
func watchSSE(ctx context.Context, hc *http.Client, run *failoverRun, url string, in *foInstance, done, reconnects *atomic.Int64) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			reconnects.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/instances/"+in.id+"/events", nil)
		res, err := (&http.Client{Transport: hc.Transport}).Do(req)
		if err != nil {
			continue
		}
		if res.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode < 500 {
				run.problem("SSE %s: %d %s", in.id, res.StatusCode, b)
				return
			}
			continue
		}
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev struct{ RuntimeStatus interpreter.RuntimeStatus }
			if json.Unmarshal([]byte(data), &ev) == nil && ev.RuntimeStatus.Terminal() {
				res.Body.Close()
				if ev.RuntimeStatus != interpreter.StatusCompleted {
					run.problem("SSE %s: %s", in.id, ev.RuntimeStatus)
				}
				done.Add(1)
				return
			}
		}
		res.Body.Close()
	}
	run.problem("SSE %s: no terminal status before the test's deadline", in.id)
}
