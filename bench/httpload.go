package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPSample is one repetition of the GET status load.
type HTTPSample struct {
	Requests  int64   `json:"requests"`
	ReqPerSec float64 `json:"reqPerSec"`
	P50       float64 `json:"p50ms"`
	P99       float64 `json:"p99ms"`
	Max       float64 `json:"maxms"`
	Errors    int64   `json:"errors"` // transport errors and unexpected status codes
	RedisUS   float64 `json:"redisCpuUsPerReq"`
	ServerUS  float64 `json:"serverCpuUsPerReq"` // this process: the server (and the Go load generator, if used)
}

// serve runs h on a loopback port until the returned stop is called.
func serve(h http.Handler) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// goLoad sends GETs over conns keep-alive connections for d, cycling
// through paths, and reports throughput and latency. ok says which status
// codes count as success.
func goLoad(ctx context.Context, base string, paths []string, conns int, d time.Duration, ok func(int) bool) HTTPSample {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var errs atomic.Int64
	var total atomic.Int64
	lats := make([][]float64, conns)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for g := 0; g < conns; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := g * len(paths) / conns
			buf := make([]float64, 0, 1<<16)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				p := paths[i%len(paths)]
				i++
				t0 := time.Now()
				resp, err := cl.Get(base + p)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				buf = append(buf, float64(time.Since(t0).Nanoseconds())/1e6)
				if !ok(resp.StatusCode) {
					errs.Add(1)
				}
			}
			lats[g] = buf
			total.Add(int64(len(buf)))
		}()
	}
	start := time.Now()
	wg.Wait()
	el := time.Since(start)
	all := slices.Concat(lats...)
	slices.Sort(all)
	return HTTPSample{Requests: total.Load(), ReqPerSec: float64(total.Load()) / el.Seconds(),
		P50: percentile(all, 50), P99: percentile(all, 99), Max: percentile(all, 100), Errors: errs.Load()}
}

// wrkLoad runs wrk with a Lua script cycling through paths; wrk counts
// non-2xx/3xx answers as errors.
func wrkLoad(ctx context.Context, wrk, base string, paths []string, conns int, d time.Duration) (HTTPSample, error) {
	dir, err := os.MkdirTemp("", "cairn-bench-wrk-")
	if err != nil {
		return HTTPSample{}, err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	b.WriteString("local paths = {\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "  %q,\n", p)
	}
	b.WriteString(`}
local i = 0
setup = function(thread) thread:set("off", math.random(#paths)) end
init = function(args) i = tonumber(off) or 0 end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
`)
	script := filepath.Join(dir, "paths.lua")
	if err := os.WriteFile(script, []byte(b.String()), 0o644); err != nil {
		return HTTPSample{}, err
	}
	secs := max(1, int(d.Seconds()))
	out, err := exec.CommandContext(ctx, wrk, "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"-s", script, base+"/").CombinedOutput()
	if err != nil {
		return HTTPSample{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "BENCH "); ok {
			var req, durUS, p50, p99, mx, errs int64
			if _, err := fmt.Sscan(rest, &req, &durUS, &p50, &p99, &mx, &errs); err != nil {
				return HTTPSample{}, fmt.Errorf("wrk output %q: %w", line, err)
			}
			return HTTPSample{Requests: req, ReqPerSec: float64(req) / (float64(durUS) / 1e6),
				P50: float64(p50) / 1e3, P99: float64(p99) / 1e3, Max: float64(mx) / 1e3, Errors: errs}, nil
		}
	}
	return HTTPSample{}, fmt.Errorf("wrk printed no summary: %s", out)
}
