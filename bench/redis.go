package main

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redisproc"
)

// redisServer is the throwaway redis-server the whole run uses.
type redisServer struct {
	p    *redisproc.Process
	dir  string
	addr string
}

// startRedis launches redis-server on a free loopback port with persistence
// off (both systems run on the same server, so neither pays for fsync).
func startRedis(bin string) (*redisServer, error) {
	return startRedisWith(bin, "--appendonly", "no")
}

// startRedisWith launches redis-server with the persistence arguments
// given, in a temporary directory of its own (its append-only file, if
// any, lives there).
func startRedisWith(bin string, persistence ...string) (*redisServer, error) {
	dir, err := os.MkdirTemp("", "cairn-bench-redis-")
	if err != nil {
		return nil, err
	}
	p, err := redisproc.Start(context.Background(), redisproc.Options{
		Dir: dir, Bin: bin,
		Args: append(persistence,
			// The peer and the bench's own subscriber must never be cut off.
			"--client-output-buffer-limit", "pubsub 0 0 0",
			"--maxclients", "10000",
		),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &redisServer{p: p, dir: dir, addr: p.Addr()}, nil
}

func (s *redisServer) logTail() string { return s.p.LogTail() }

func (s *redisServer) stop() {
	_ = s.p.Stop(10 * time.Second)
	os.RemoveAll(s.dir)
}

func (s *redisServer) pid() int { return s.p.Pid() }

// counter is a go-redis hook that counts round trips (a pipeline is one)
// and the commands the client sends, by command name.
type counter struct {
	trips atomic.Int64
	cmds  atomic.Int64
	mu    sync.Mutex
	kinds map[string]int64 // round trips by kind: the command name, or "pipeline:<first>"
}

func newCounter() *counter { return &counter{kinds: map[string]int64{}} }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.trips.Add(1)
		c.cmds.Add(1)
		c.note(strings.ToLower(cmd.Name()))
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.trips.Add(1)
		c.cmds.Add(int64(len(cmds)))
		if len(cmds) > 0 {
			c.note("pipeline:" + strings.ToLower(cmds[0].Name()))
		}
		return next(ctx, cmds)
	}
}

func (c *counter) note(kind string) {
	c.mu.Lock()
	c.kinds[kind]++
	c.mu.Unlock()
}

// counts is a snapshot of a counter.
type counts struct {
	Trips int64            `json:"trips"`
	Cmds  int64            `json:"cmds"`
	Kinds map[string]int64 `json:"kinds"`
}

func (c *counter) snapshot() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := make(map[string]int64, len(c.kinds))
	for n, v := range c.kinds {
		k[n] = v
	}
	return counts{Trips: c.trips.Load(), Cmds: c.cmds.Load(), Kinds: k}
}

func (c *counter) reset() {
	c.mu.Lock()
	c.trips.Store(0)
	c.cmds.Store(0)
	c.kinds = map[string]int64{}
	c.mu.Unlock()
}

func (a counts) add(b counts) counts {
	out := counts{Trips: a.Trips + b.Trips, Cmds: a.Cmds + b.Cmds, Kinds: map[string]int64{}}
	for k, v := range a.Kinds {
		out.Kinds[k] += v
	}
	for k, v := range b.Kinds {
		out.Kinds[k] += v
	}
	return out
}

// serverStats is what the bench reads from INFO: commands executed (Lua
// included) with their CPU time, memory and the server's CPU time.
type serverStats struct {
	calls  map[string]int64   // by command
	usec   map[string]float64 // by command
	used   int64              // used_memory less the clients' buffers (mem_clients_normal)
	cpuSec float64            // used_cpu_sys + used_cpu_user
}

func (s serverStats) totalCalls() int64 {
	var n int64
	for _, v := range s.calls {
		n += v
	}
	return n
}

// harness is the bench's own connection to Redis: INFO, FLUSHALL, the
// status subscription. Its commands are counted so they can be taken out of
// the server's totals.
type harness struct {
	c   *redis.Client
	own *counter
}

func newHarness(addr string) *harness {
	h := &harness{c: redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4}), own: newCounter()}
	h.c.AddHook(h.own)
	return h
}

// stats reads INFO commandstats, memory and cpu (one command).
func (h *harness) stats(ctx context.Context) (serverStats, error) {
	info, err := h.c.Info(ctx, "commandstats", "memory", "cpu").Result()
	if err != nil {
		return serverStats{}, err
	}
	st := serverStats{calls: map[string]int64{}, usec: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
			name, fields, _ := strings.Cut(rest, ":")
			for _, f := range strings.Split(fields, ",") {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "calls":
					st.calls[name], _ = strconv.ParseInt(v, 10, 64)
				case "usec":
					st.usec[name], _ = strconv.ParseFloat(v, 64)
				}
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "used_memory":
			n, _ := strconv.ParseInt(v, 10, 64)
			st.used += n
		case "mem_clients_normal":
			n, _ := strconv.ParseInt(v, 10, 64)
			st.used -= n
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			st.cpuSec += f
		}
	}
	return st, sc.Err()
}

// window measures what the server did between begin and end, minus the
// harness's own commands.
type window struct {
	h      *harness
	before serverStats
	own0   int64
}

func (h *harness) begin(ctx context.Context) (*window, error) {
	own0 := h.own.cmds.Load()
	st, err := h.stats(ctx)
	if err != nil {
		return nil, err
	}
	return &window{h: h, before: st, own0: own0}, nil
}

// delta is what happened since begin: commands (harness excluded), CPU
// microseconds by command, memory and server CPU seconds.
type delta struct {
	cmds   int64
	byCmd  map[string]int64
	usec   map[string]float64
	mem    int64
	cpuSec float64
}

func (w *window) end(ctx context.Context) (delta, error) {
	own := w.h.own.cmds.Load() - w.own0 // includes begin's INFO, which the server counted; not this one
	st, err := w.h.stats(ctx)
	if err != nil {
		return delta{}, err
	}
	d := delta{byCmd: map[string]int64{}, usec: map[string]float64{}}
	d.cmds = st.totalCalls() - w.before.totalCalls() - own
	for k, v := range st.calls {
		if n := v - w.before.calls[k]; n > 0 {
			d.byCmd[k] = n
		}
	}
	d.byCmd["info"] -= own // the harness issues INFO and little else while measuring
	if d.byCmd["info"] <= 0 {
		delete(d.byCmd, "info")
	}
	for k, v := range st.usec {
		if u := v - w.before.usec[k]; u > 0 {
			d.usec[k] = u
		}
	}
	d.mem = st.used - w.before.used
	d.cpuSec = st.cpuSec - w.before.cpuSec
	return d, nil
}

// flush empties the server and waits until its memory is given back.
func (h *harness) flush(ctx context.Context) error {
	return h.c.FlushAll(ctx).Err()
}

// settle waits until the server's memory, client buffers excluded, has
// not moved for a second (Redis updates its count of the clients' memory
// incrementally, and shrinks idle query buffers, over a few seconds), at
// most 5 seconds, and returns it.
func (h *harness) settle(ctx context.Context) int64 {
	var last []int64
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := h.stats(ctx)
		if err != nil {
			return 0
		}
		last = append(last, st.used)
		if n := len(last); n >= 5 {
			w := last[n-5:]
			lo, hi := slices.Min(w), slices.Max(w)
			if hi-lo <= max(4096, hi/500) || time.Now().After(deadline) {
				return st.used
			}
		}
		select {
		case <-ctx.Done():
			return st.used
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// memoryBreakdown returns cairn's Redis memory per instance of a finished
// run by key: MEMORY USAGE of the instance hash and history list of a
// sample of its instances, and of the shared per-partition keys divided by
// the instances.
func memoryBreakdown(ctx context.Context, h *harness, smp Sample) (map[string]float64, error) {
	out := map[string]float64{}
	const sample = 200
	n := min(sample, smp.N)
	for i := 0; i < n; i++ {
		id := smp.prefix + strconv.Itoa(i*smp.N/n)
		p := partitionOf(id, 16)
		l, err := h.c.LLen(ctx, fmt.Sprintf("cairn:{%d}:log:%s", p, id)).Result()
		if err != nil && err != redis.Nil {
			return nil, err
		}
		out["history entries"] += float64(l) / float64(n)
		for _, k := range []string{"inst", "log"} {
			v, err := h.c.MemoryUsage(ctx, fmt.Sprintf("cairn:{%d}:%s:%s", p, k, id), 0).Result()
			if err != nil && err != redis.Nil {
				return nil, err
			}
			out["instance "+k] += float64(v) / float64(n)
		}
	}
	for p := 0; p < 16; p++ {
		for _, k := range []string{"work", "tasks:local", "timers", "index", "finished"} {
			v, err := h.c.MemoryUsage(ctx, fmt.Sprintf("cairn:{%d}:%s", p, k), 0).Result()
			if err != nil && err != redis.Nil {
				return nil, err
			}
			out["partition "+k] += float64(v) / float64(smp.N+warmup)
		}
	}
	return out, nil
}

// partitionOf is redisstore's partition of an instance: fnv32a(id) mod n.
func partitionOf(id string, n int) int {
	f := fnv.New32a()
	_, _ = f.Write([]byte(id))
	return int(f.Sum32() % uint32(n))
}
