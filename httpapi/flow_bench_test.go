package httpapi_test

// BenchmarkReserveFlow measures what `cairn serve` (role all) spends per
// ReserveTicket instance driven over its API: start, raiseEvent right after
// it, then GET status until the instance has completed, with the engine
// and the activity runtime running in this process as serve runs them.
// Requests go to the handler directly (no net/http server, no client), from
// benchConns goroutines at once, so cpu-µs/op is the server's work per
// instance: the three handlers, the engine's transitions and the store
// client. calls/op is the HTTP calls per instance (the polls vary).
// Nothing here asserts anything but the answers.
//
//	go test -run '^$' -bench ReserveFlow -benchtime 5000x -benchmem ./httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

func BenchmarkReserveFlow(b *testing.B) {
	srv := redistest.Start(b)
	rdb := servedClient(srv.Addr())
	b.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.Options{})
	if err := store.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	cat := interpreter.NewCatalog(store)
	h := httpapi.New(httpapi.Config{Backend: store, Catalog: cat})
	src, err := os.ReadFile("../workflows/reserve-ticket.yaml")
	if err != nil {
		b.Fatal(err)
	}
	do := func(w *discardWriter, method, path, ctype, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		return w.code
	}
	if c := do(&discardWriter{h: http.Header{}}, "PUT", "/v1/workflows/ReserveTicket", "application/yaml", string(src)); c != http.StatusCreated {
		b.Fatalf("deploy: %d", c)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	reg := activity.NewRegistry()
	eng := interpreter.NewEngine(store, cat, interpreter.EngineOptions{
		Interpreter: interpreter.New(interpreter.Options{LocalActivity: reg.Has}),
	})
	rt := activity.NewRuntime(activity.Direct(store, eng), cat, reg, activity.Options{
		Consumer: eng.Consumer(), Enqueued: store.TaskEnqueued, Block: time.Second,
	})
	wg.Add(2)
	go func() { defer wg.Done(); _ = eng.Run(ctx) }()
	go func() { defer wg.Done(); _ = rt.Run(ctx) }()
	b.Cleanup(func() { cancel(); wg.Wait() })

	var next, calls atomic.Int64
	b.SetParallelism(max(1, benchConns/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			id := fmt.Sprint("flow-", next.Add(1))
			if c := do(w, "POST", df+"/orchestrators/ReserveTicket/"+id, "application/json", `"user1"`); c != http.StatusAccepted {
				b.Errorf("start: %d", c)
				return
			}
			if c := do(w, "POST", df+"/instances/"+id+"/raiseEvent/BookingConfirmed", "application/json", `true`); c != http.StatusAccepted {
				b.Errorf("raise: %d", c)
				return
			}
			n := int64(2)
			for {
				n++
				c := do(w, "GET", df+"/instances/"+id, "", "")
				if c == http.StatusOK {
					break
				}
				if c != http.StatusAccepted {
					b.Errorf("status: %d", c)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			calls.Add(n)
		}
	})
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	n := float64(next.Load())
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/op")
	b.ReportMetric(float64(calls.Load())/n, "calls/op")
}
