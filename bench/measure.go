package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Sample is one repetition of one run.
type Sample struct {
	N       int       `json:"n"`
	Started time.Time `json:"started"` // just before the first start
	Seconds float64   `json:"seconds"` // first start → last instance at its target
	PerSec  float64   `json:"perSec"`
	P50     float64   `json:"p50ms"`
	P90     float64   `json:"p90ms"`
	P99     float64   `json:"p99ms"`
	Max     float64   `json:"maxms"`
	// Per instance:
	Trips    float64            `json:"roundTrips"`     // client round trips (a pipeline is one)
	Sent     float64            `json:"commandsSent"`   // commands clients sent
	Cmds     float64            `json:"commands"`       // commands Redis executed, Lua included
	MemBytes float64            `json:"memBytes"`       // memory delta once settled (runs with Mem only)
	RedisUS  float64            `json:"redisCpuUs"`     // Redis CPU µs
	ClientUS float64            `json:"clientCpuUs"`    // CPU µs of the processes under test (load generator included)
	ServerUS float64            `json:"serverCpuUs"`    // CPU µs of a peer's server process (Temporal's), not in ClientUS
	Kinds    map[string]float64 `json:"tripsByKind"`    // round trips by first command
	ByCmd    map[string]float64 `json:"commandsByName"` // commands executed by name
	Usec     map[string]float64 `json:"redisUsByName"`  // Redis µs by command
	Failed   int                `json:"failed,omitempty"`
	// Foreign is the CPU other processes of the machine used during the
	// run, in cores (0.1 = 10 % of one core); Quiet is the machine's load
	// before the repetition started.
	Foreign float64 `json:"foreignCores"`
	Quiet   float64 `json:"loadBefore"`
	// PurgedMemBytes: memory per instance left once the run's finished
	// instances were purged (the retention workaround), where measured.
	PurgedMemBytes float64 `json:"purgedMemBytes,omitempty"`
	prefix         string  // instance ids are prefix + index
}

// system is a workflow engine under test, running against the shared Redis.
type system interface {
	starter(shape string) starter
	track(t *tracker)
	resetCounts() error
	usage() (counts, float64, error) // round trips since reset; CPU seconds so far
	newRunID(tag string) string
}

// runSpec is one measured run.
type runSpec struct {
	Shape string
	N     int
	Rate  float64 // starts per second; 0 = burst
	Conc  int     // concurrent starters in a burst
	Mem   bool    // measure memory (waits for the server's memory to settle before and after)
}

func (r runSpec) mode() string {
	if r.Rate > 0 {
		return fmt.Sprintf("paced %g/s", r.Rate)
	}
	return fmt.Sprintf("burst %s", count(r.N))
}

func count(n int) string {
	switch {
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%d,000", n/1000)
	default:
		return fmt.Sprint(n)
	}
}

const warmup = 200

// measure runs one repetition: a warm-up, then n instances, then reads
// the counters.
func measure(ctx context.Context, sys system, h *harness, r runSpec, timeout time.Duration) (Sample, error) {
	quiet := waitQuiet(ctx, quietCores, quietWait)
	want := shapeTarget(r.Shape)
	w := newTracker(sys.newRunID("w"), warmup, want)
	sys.track(w)
	if err := runLoad(ctx, w, 0, 32, sys.starter(r.Shape)); err != nil {
		return Sample{}, fmt.Errorf("warm-up: %w", err)
	}
	if err := w.wait(ctx, 60*time.Second); err != nil {
		return Sample{}, fmt.Errorf("warm-up: %w", err)
	}
	time.Sleep(100 * time.Millisecond)
	var memBefore, memAfter int64
	if r.Mem {
		memBefore = h.settle(ctx)
	}

	t := newTracker(sys.newRunID("r"), r.N, want)
	sys.track(t)
	if err := sys.resetCounts(); err != nil {
		return Sample{}, err
	}
	_, cpu0, err := sys.usage()
	if err != nil {
		return Sample{}, err
	}
	win, err := h.begin(ctx)
	if err != nil {
		return Sample{}, err
	}
	busy0, _ := machineBusy()
	started := time.Now()
	conc := r.Conc
	if conc <= 0 {
		conc = 32
	}
	loadErr := runLoad(ctx, t, r.Rate, conc, sys.starter(r.Shape))
	waitErr := t.wait(ctx, timeout)
	d, err := win.end(ctx)
	if err != nil {
		return Sample{}, err
	}
	c, cpu1, err := sys.usage()
	if err != nil {
		return Sample{}, err
	}
	busy1, _ := machineBusy()
	wall := time.Since(started).Seconds()
	if loadErr != nil {
		return Sample{}, loadErr
	}
	if waitErr != nil {
		return Sample{}, waitErr
	}
	if r.Mem {
		memAfter = h.settle(ctx)
	}
	lat, span := t.latencies()
	n := float64(r.N)
	s := Sample{
		N: r.N, Started: started, Seconds: span.Seconds(), PerSec: n / span.Seconds(),
		P50: percentile(lat, 50), P90: percentile(lat, 90), P99: percentile(lat, 99), Max: percentile(lat, 100),
		Trips: float64(c.Trips) / n, Sent: float64(c.Cmds) / n, Cmds: float64(d.cmds) / n,
		MemBytes: float64(memAfter-memBefore) / n,
		RedisUS:  d.cpuSec * 1e6 / n, ClientUS: (cpu1 - cpu0) * 1e6 / n,
		Kinds: map[string]float64{}, ByCmd: map[string]float64{}, Usec: map[string]float64{},
		Failed: int(t.failed.Load()), prefix: t.prefix,
		Foreign: max(0, (busy1-busy0)-(cpu1-cpu0)-d.cpuSec) / wall, Quiet: quiet,
	}
	for k, v := range c.Kinds {
		s.Kinds[k] = float64(v) / n
	}
	for k, v := range d.byCmd {
		s.ByCmd[k] = float64(v) / n
	}
	for k, v := range d.usec {
		s.Usec[k] = v / n
	}
	return s, nil
}

// topKeys returns "name n" pairs of m, largest first, at most k.
func topKeys(m map[string]float64, k int, format string) string {
	type kv struct {
		k string
		v float64
	}
	var xs []kv
	for a, b := range m {
		xs = append(xs, kv{a, b})
	}
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if xs[j].v > xs[i].v || (xs[j].v == xs[i].v && xs[j].k < xs[i].k) {
				xs[i], xs[j] = xs[j], xs[i]
			}
		}
	}
	var parts []string
	for i, x := range xs {
		if i == k {
			break
		}
		parts = append(parts, fmt.Sprintf("%s "+format, x.k, x.v))
	}
	return strings.Join(parts, ", ")
}
