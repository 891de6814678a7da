package httpapi_test

// BenchmarkGetStatus measures GET status the way issue 7 states its target:
// 1,000 waiting instances in a real redis-server, the store client set up
// as `cairn serve` sets it up, and requests over loopback HTTP from 64
// connections. It is a repeatable driver for profiling and for comparing
// changes, not a test: nothing here asserts timing.
//
//	go test -run '^$' -bench GetStatus -benchtime 5s ./httpapi
//	go test -run '^$' -bench GetStatus/handler -cpuprofile cpu.out ./httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

const (
	benchInstances = 1000
	benchConns     = 64
)

// waitingInstances starts benchInstances instances of a workflow that waits
// for an event, runs the engine until every one of them is waiting, and
// stops it, so the benchmark reads settled instances only.
func waitingInstances(b *testing.B, store *redisstore.Store, cat *interpreter.Catalog, h http.Handler) []string {
	b.Helper()
	do := func(method, path, ctype, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := do("PUT", "/v1/workflows/Gate", "application/yaml", "name: Gate\nsteps:\n  - wait: {event: Open}\n"); w.Code/100 != 2 {
		b.Fatalf("deploy: %d %s", w.Code, w.Body)
	}
	paths := make([]string, benchInstances)
	for i := range paths {
		id := fmt.Sprintf("bench-%04d", i)
		paths[i] = df + "/instances/" + id
		if w := do("POST", df+"/orchestrators/Gate/"+id, "", ""); w.Code != http.StatusAccepted {
			b.Fatalf("start %s: %d %s", id, w.Code, w.Body)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = interpreter.NewEngine(store, cat, interpreter.EngineOptions{}).Run(ctx)
	}()
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range paths {
		for {
			w := do("GET", p, "", "")
			if strings.Contains(w.Body.String(), `"waitingFor":{`) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s is not waiting: %d %s", p, w.Code, w.Body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return paths
}

func BenchmarkGetStatus(b *testing.B) {
	srv := redistest.Start(b)
	rdb := servedClient(srv.Addr())
	b.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.Options{})
	if err := store.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	cat := interpreter.NewCatalog(store)
	h := httpapi.New(httpapi.Config{Backend: store, Catalog: cat})
	paths := waitingInstances(b, store, cat, h)

	// handler: the server's work alone (routing, the store call, the
	// JSON), one request at a time, without a network in front; allocs/op
	// are the handler's own. cpu-µs/op counts every wait for Redis as a
	// wake-up, which a busy server shares among requests.
	b.Run("handler", func(b *testing.B) {
		reqs := make([]*http.Request, len(paths))
		for i, p := range paths {
			reqs[i] = httptest.NewRequest("GET", p, nil)
		}
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		cpu0 := processCPU(b)
		n := 0
		for ; b.Loop(); n++ {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, reqs[n%len(reqs)])
			if w.code != http.StatusAccepted {
				b.Fatalf("%s: %d", reqs[n%len(reqs)].URL, w.code)
			}
		}
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(n), "cpu-µs/op")
	})

	// http: benchConns keep-alive connections over loopback; the load
	// generator runs in this process too, so ns/op is the whole
	// machine's cost per request, not the server's.
	b.Run("http", func(b *testing.B) {
		api := httptest.NewServer(h)
		defer api.Close()
		tr := &http.Transport{MaxConnsPerHost: benchConns, MaxIdleConnsPerHost: benchConns, DisableCompression: true}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr}
		var mu sync.Mutex
		var lats []time.Duration
		var next atomic.Int64
		b.SetParallelism(max(1, benchConns/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := processCPU(b)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			own := make([]time.Duration, 0, 1024)
			i := int(next.Add(97)) // spread the goroutines over the instances
			for pb.Next() {
				i++
				t0 := time.Now()
				res, err := cl.Get(api.URL + paths[i%len(paths)])
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusAccepted {
					b.Errorf("%s: %d", paths[i%len(paths)], res.StatusCode)
					return
				}
				own = append(own, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, own...)
			mu.Unlock()
		})
		el := time.Since(start)
		cpu := processCPU(b) - cpu0
		b.StopTimer()
		if len(lats) > 0 {
			slices.Sort(lats)
			b.ReportMetric(float64(len(lats))/el.Seconds(), "req/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lats)), "cpu-µs/op")
			b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1e3, "p99-ms")
		}
	})
}

// discardWriter is a reusable ResponseWriter that keeps only the code, so
// the handler benchmark counts the handler's allocations, not a
// recorder's.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.code = code }

// processCPU is the CPU time (user and system) this process has used: the
// server's, the store client's and, in the http benchmark, the load
// generator's. Less disturbed by other processes than ns/op.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
