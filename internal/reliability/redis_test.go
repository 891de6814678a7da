package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redistest"
)

// TestRedisRestart runs the mixed workload on one cairn process over a
// redis-server with appendonly yes and appendfsync always, and restarts
// Redis under it at random moments: killed with SIGKILL (a crash) or
// stopped with SIGTERM, each time started again on the same port and
// files. cairn is never restarted or told anything: it must reconnect by
// itself, and nothing may be lost: every instance reaches its one correct
// outcome with each transition once in its history.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	n, restarts := size(200, 2000), size(3, 15)
	span := time.Duration(size(8, 60)) * time.Second
	rs := redistest.StartWith(t, redistest.StartOpts{AOF: true})
	if got := configGet(t, rs.Addr(), "appendfsync"); got != "always" {
		t.Fatalf("appendfsync is %q", got)
	}
	acts := newActivityServer(t)
	book := &logBook{}
	p := startCairn(t, book, serveOpts{redis: rs.URL(), workflows: writeWorkflows(t, mixedWorkflows(acts.url))})
	c := newClient(p.url, "")
	f := newFleet(t, c, acts, "redis", n)
	outages := 0
	f.run(span, restarts, func(k int) {
		if k%2 == 0 {
			rs.Kill()
			// Stay down a while, so requests and the engine meet the outage.
			time.Sleep(time.Duration(200+rand.IntN(1500)) * time.Millisecond)
		}
		rs.Restart(t)
		// Reopen the gate once the API reaches Redis again, so gated
		// requests do not meet the tail of the outage.
		if err := waitReady(c); err != nil {
			t.Errorf("after restart %d: %v", k+1, err)
		}
		outages++
	})
	if t.Failed() {
		return
	}
	f.verify()
	if !p.alive() {
		t.Errorf("cairn exited: %v", p.err)
	}
	book.check(t)
	tasks, execs, dups := acts.totals()
	t.Logf("redis restart: %d instances, %d Redis restarts (%d by SIGKILL) under one cairn process; all finished correctly, each transition once; "+
		"http activities: %d tasks, %d executions, %d duplicate executions; %d start requests retried (503 or no answer); %d buffered event pairs out of order",
		n, outages, (outages+1)/2, tasks, execs, dups, f.startRetries.Load(), f.reordered.Load())
}

// waitReady waits until the API reaches Redis on every connection: a burst
// of concurrent /readyz calls all answer 200. (After Redis comes back, the
// store client's pool may keep refusing new connections for up to a second,
// until its background dial probe succeeds; one ping on a pooled connection
// would not show that.)
func waitReady(c *client) error {
	deadline := time.Now().Add(waitLimit)
	for {
		var bad atomic.Int32
		var last atomic.Value
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := c.do("GET", "/readyz", "", nil)
				if err != nil || r.code != http.StatusOK {
					bad.Add(1)
					last.Store(fmt.Sprint(r, err))
				}
			}()
		}
		wg.Wait()
		if bad.Load() == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("readyz: %v", last.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func configGet(t testing.TB, addr, name string) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	m, err := rdb.ConfigGet(context.Background(), name).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m[name]
}

// TestRedisDown stops Redis under a running cairn. Every call that needs
// Redis answers 503 with a JSON error (no hang, no panic, never 500),
// /healthz stays 200, and when Redis comes back both the API and the engine
// carry on by themselves: a timer that fell due during the outage fires and
// its instance completes.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	rs := redistest.StartWith(t, redistest.StartOpts{AOF: true})
	book := &logBook{}
	wf := writeWorkflows(t, map[string]string{"Nap": `
name: Nap
steps:
  - setStatus: napping
  - wait: {duration: 2s}
  - return: rested
`})
	p := startCairn(t, book, serveOpts{redis: rs.URL(), workflows: wf})
	c := newClient(p.url, "")
	if r := c.must(t, "POST", df+"/orchestrators/Nap/nap-1", "application/json", nil); r.code != 202 {
		t.Fatalf("start: %v", r)
	}
	waitStatus(t, c, "nap-1", func(s *status) bool { return s.RuntimeStatus == "Running" })
	rs.Stop()

	type call struct{ method, path, ctype, body string }
	calls := []call{
		{"POST", df + "/orchestrators/Nap/nap-2", "application/json", `1`},
		{"POST", df + "/orchestrators/Nap?timeout=3", "", ""},
		{"GET", df + "/instances/nap-1", "", ""},
		{"GET", df + "/instances/nap-1?showHistory=true", "", ""},
		{"GET", df + "/instances?top=10", "", ""},
		{"POST", df + "/instances/nap-1/raiseEvent/Poke", "application/json", `{}`},
		{"POST", df + "/instances/nap-1/terminate?reason=x", "", ""},
		{"POST", df + "/instances/nap-1/suspend", "", ""},
		{"POST", df + "/instances/nap-1/resume", "", ""},
		{"POST", df + "/instances/nap-1/restart", "", ""},
		{"DELETE", df + "/instances/nap-1", "", ""},
		{"DELETE", df + "/instances?createdTimeFrom=2020-01-01T00:00:00Z", "", ""},
		{"GET", "/v1/workflows", "", ""},
		{"GET", "/v1/workflows/Nap", "", ""},
		{"PUT", "/v1/workflows/Nap2", "application/yaml", "name: Nap2\nsteps:\n  - return: 1\n"},
		{"GET", "/v1/instances/nap-1/events", "", ""},
	}
	// Twice: right after Redis went away, and once the store client has
	// given up on it for a while.
	for round := 1; round <= 2; round++ {
		answers := make([]reply, len(calls))
		errs := make([]error, len(calls))
		var wg sync.WaitGroup
		for i, cl := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b []byte
				if cl.body != "" {
					b = []byte(cl.body)
				}
				answers[i], errs[i] = c.do(cl.method, cl.path, cl.ctype, b)
			}()
		}
		wg.Wait()
		for i, cl := range calls {
			r := answers[i]
			code := r.errorCode()
			if errs[i] != nil || r.code != 503 || (code != "unavailable" && code != "timeout") ||
				!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || r.header.Get("Retry-After") == "" {
				t.Errorf("round %d, Redis down: %s %s: %v %v (header %v), want 503 JSON unavailable", round, cl.method, cl.path, r, errs[i], r.header)
			}
		}
		if r := c.must(t, "GET", "/readyz", "", nil); r.code != 503 || r.errorCode() != "not-ready" {
			t.Errorf("readyz with Redis down: %v", r)
		}
		if r := c.must(t, "GET", "/healthz", "", nil); r.code != 200 {
			t.Errorf("healthz with Redis down: %v", r)
		}
	}
	// The instance's 2 s timer falls due while Redis is away.
	time.Sleep(2 * time.Second)
	if !p.alive() {
		t.Fatalf("cairn exited while Redis was down: %v\n%s", p.err, book)
	}
	rs.Restart(t)
	if err := waitReady(c); err != nil {
		t.Fatal(err)
	}
	st, err := c.waitDone("nap-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != "Completed" || !jsonEqual(st.Output, []byte(`"rested"`)) {
		t.Errorf("nap-1 after the outage: %s %s", st.RuntimeStatus, st.Output)
	}
	// And new work runs.
	if r := c.must(t, "POST", df+"/orchestrators/Nap/nap-3", "application/json", nil); r.code != 202 {
		t.Fatalf("start after the outage: %v", r)
	}
	if st, err := c.waitDone("nap-3"); err != nil || st.RuntimeStatus != "Completed" {
		t.Errorf("nap-3: %+v %v", st, err)
	}
	book.check(t)
}

// waitStatus polls an instance until ok holds.
func waitStatus(t testing.TB, c *client, id string, ok func(*status) bool) *status {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s, err := c.statusOf(id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s %s", id, s.RuntimeStatus, s.Output)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
