package httpapi_test

// BenchmarkCalls measures the three calls a ReserveTicket client makes
// besides GET status (BenchmarkGetStatus): start, raiseEvent and terminate,
// each through the handler alone (routing, decoding, the store calls, the
// JSON), one request at a time, against a real redis-server and with no
// engine running, so the work is the API's alone. It reports allocations,
// the process's CPU per call, and the store round trips per call (a
// pipeline counts once). Nothing here asserts anything but the answers.
//
//	go test -run '^$' -bench Calls -benchtime 20000x ./httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// redisCPU is the CPU time the Redis server has used (INFO cpu).
func redisCPU(b *testing.B, rdb *redis.Client) time.Duration {
	var total float64
	for _, line := range strings.Split(rdb.Info(context.Background(), "cpu").Val(), "\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), f); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				total += x
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// tripCounter counts round trips to Redis: a command or a pipeline each.
type tripCounter struct{ n atomic.Int64 }

func (t *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (t *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { t.n.Add(1); return next(ctx, cmd) }
}
func (t *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { t.n.Add(1); return next(ctx, cmds) }
}

func BenchmarkCalls(b *testing.B) {
	srv := redistest.Start(b)
	rdb := servedClient(srv.Addr())
	b.Cleanup(func() { _ = rdb.Close() })
	trips := &tripCounter{}
	rdb.AddHook(trips)
	store := redisstore.New(rdb, redisstore.Options{})
	if err := store.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := httpapi.New(httpapi.Config{Backend: store, Catalog: interpreter.NewCatalog(store)})
	src, err := os.ReadFile("../workflows/reserve-ticket.yaml")
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}
	serve := func(b *testing.B, method, path, body string, want int) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if method == "PUT" {
			req.Header.Set("Content-Type", "application/yaml")
		} else if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != want {
			b.Fatalf("%s %s: %d, want %d", method, path, w.code, want)
		}
	}
	serve(b, "PUT", "/v1/workflows/ReserveTicket", string(src), http.StatusCreated)

	// Each run starts its own instances, so start never meets an id
	// that exists and raise and terminate always find one.
	run := 0
	measure := func(b *testing.B, call func(b *testing.B, id string)) {
		run++
		prefix := fmt.Sprintf("b%d-", run)
		b.ReportAllocs()
		b.ResetTimer()
		t0, cpu0 := trips.n.Load(), processCPU(b)
		n := b.N
		for i := range n {
			call(b, prefix+fmt.Sprint(i))
		}
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(n), "cpu-µs/op")
		b.ReportMetric(float64(trips.n.Load()-t0)/float64(n), "trips/op")
	}
	// started makes the instances raise and terminate work on, outside
	// the timed loop.
	started := func(b *testing.B, prefix string, n int) {
		b.StopTimer()
		for i := range n {
			serve(b, "POST", df+"/orchestrators/ReserveTicket/"+prefix+fmt.Sprint(i), `"user1"`, http.StatusAccepted)
		}
		b.StartTimer()
	}

	b.Run("start", func(b *testing.B) {
		measure(b, func(b *testing.B, id string) {
			serve(b, "POST", df+"/orchestrators/ReserveTicket/"+id, `"user1"`, http.StatusAccepted)
		})
	})
	b.Run("raiseEvent", func(b *testing.B) {
		prefix := fmt.Sprintf("b%d-", run+1)
		started(b, prefix, b.N)
		measure(b, func(b *testing.B, id string) {
			serve(b, "POST", df+"/instances/"+id+"/raiseEvent/BookingConfirmed", `true`, http.StatusAccepted)
		})
	})
	// start-parallel: starts from benchConns goroutines at once, as a busy
	// API serves them; reports the Redis server's CPU per start too.
	b.Run("start-parallel", func(b *testing.B) {
		run++
		prefix := fmt.Sprintf("b%d-", run)
		var next atomic.Int64
		b.SetParallelism(max(1, benchConns/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.ResetTimer()
		t0, cpu0, r0 := trips.n.Load(), processCPU(b), redisCPU(b, rdb)
		b.RunParallel(func(pb *testing.PB) {
			w := &discardWriter{h: http.Header{}}
			for pb.Next() {
				req := httptest.NewRequest("POST", df+"/orchestrators/ReserveTicket/"+prefix+fmt.Sprint(next.Add(1)), strings.NewReader(`"user1"`))
				req.Header.Set("Content-Type", "application/json")
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != http.StatusAccepted {
					b.Errorf("start: %d", w.code)
					return
				}
			}
		})
		n := float64(next.Load())
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/n, "cpu-µs/op")
		b.ReportMetric(float64((redisCPU(b, rdb)-r0).Microseconds())/n, "redis-cpu-µs/op")
		b.ReportMetric(float64(trips.n.Load()-t0)/n, "trips/op")
	})
	b.Run("terminate", func(b *testing.B) {
		prefix := fmt.Sprintf("b%d-", run+1)
		started(b, prefix, b.N)
		measure(b, func(b *testing.B, id string) {
			serve(b, "POST", df+"/instances/"+id+"/terminate?reason=bench", "", http.StatusAccepted)
		})
	})
}
