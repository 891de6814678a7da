package main

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

//go:embed workflows/*.yaml
var benchWorkflows embed.FS

// Shapes: what a run starts and what it waits for.
const (
	shapeOne     = "one-activity"           // (a) one activity, then return
	shapeBooking = "reserve-ticket"         // (b) ReserveTicket, BookingConfirmed raised right after the start
	shapeTwenty  = "twenty-steps"           // (c) 20 set/setStatus/switch steps
	shapeWait    = "reserve-ticket-waiting" // ReserveTicket with no event: start → waiting
	shapeIdle    = "idle"                   // background: ReserveTicket with a 1 h timeout, left waiting
)

func shapeTarget(shape string) target {
	if shape == shapeWait || shape == shapeIdle {
		return targetWaiting
	}
	return targetDone
}

// cairnDefs are the workflows cairn runs, parsed once.
type cairnDefs map[string]*dsl.Workflow // by shape

func loadCairnDefs(workflowsDir string) (cairnDefs, error) {
	rt, err := os.ReadFile(filepath.Join(workflowsDir, "reserve-ticket.yaml"))
	if err != nil {
		return nil, fmt.Errorf("ReserveTicket (run from bench/, or pass -workflows): %w", err)
	}
	if !strings.Contains(string(rt), "timeout: 60s") || !strings.Contains(string(rt), "name: ReserveTicket\n") {
		return nil, errors.New("reserve-ticket.yaml no longer has 'name: ReserveTicket' and a 60s timeout; update the bench's idle variant")
	}
	idle := strings.Replace(strings.Replace(string(rt), "timeout: 60s", "timeout: 1h", 1),
		"name: ReserveTicket\n", "name: ReserveTicketIdle\n", 1)
	one, _ := benchWorkflows.ReadFile("workflows/one-activity.yaml")
	twenty, _ := benchWorkflows.ReadFile("workflows/twenty-steps.yaml")
	defs := cairnDefs{}
	for shape, src := range map[string][]byte{shapeBooking: rt, shapeIdle: []byte(idle), shapeOne: one, shapeTwenty: twenty} {
		def, err := dsl.Parse(shape+".yaml", src)
		if err != nil {
			return nil, err
		}
		defs[shape] = def
	}
	defs[shapeWait] = defs[shapeBooking]
	return defs, nil
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// cairnConfig describes a cairn deployment under test.
type cairnConfig struct {
	Engines    int                   // engine processes: this one, plus Engines-1 children
	HistoryMax int                   // redisstore.Options.HistoryMax (0 = default)
	Retention  redisstore.Retention  // redisstore.Options.Retention (zero = keep)
	Runners    int                   // activity runtime concurrency per process (0 = its default, 8)
	Durability redisstore.Durability // redisstore.Options.Durability of this process's store (fsync checks the server)
}

// cairnSession is cairn running against a freshly flushed Redis: engines,
// activity runners, the load generator's store and the status subscriber.
type cairnSession struct {
	cfg      cairnConfig
	h        *harness
	client   *redis.Client
	cnt      *counter
	store    *redisstore.Store
	eng      *interpreter.Engine // this process's: starts go through it, as cairn serve's do
	cat      *interpreter.Catalog
	defs     cairnDefs
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	children []*child
	board    *board
	seq      atomic.Int64
}

func newStoreClient(addr string, cnt *counter) *redis.Client {
	// Protocol, DisableIdentity and ContextTimeoutEnabled as `cairn serve`
	// sets them (serve.go, redisOptions), so the bench measures the client
	// cairn runs with; the pool is larger for the bench's own load.
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 256, MinIdleConns: 16,
		Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true})
	c.AddHook(cnt)
	return c
}

func startCairn(ctx context.Context, addr string, h *harness, defs cairnDefs, cfg cairnConfig) (*cairnSession, error) {
	if err := h.flush(ctx); err != nil {
		return nil, err
	}
	s := &cairnSession{cfg: cfg, h: h, cnt: newCounter(), defs: defs}
	s.client = newStoreClient(addr, s.cnt)
	s.store = redisstore.New(s.client, redisstore.Options{HistoryMax: cfg.HistoryMax, Retention: cfg.Retention, Durability: cfg.Durability, Logger: quietLogger()})
	if err := s.store.Init(ctx); err != nil {
		return nil, err
	}
	s.cat = interpreter.NewCatalog(s.store)
	for _, def := range defs {
		if _, err := s.store.PutDefinition(ctx, def.Name, def.Hash, def.Source, time.Now()); err != nil {
			return nil, err
		}
		s.cat.Add(def)
	}
	var err error
	if s.board, err = subscribeStatus(ctx, h.c); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.eng = runEngineAndRunners(rctx, &s.wg, s.store, s.cat, "bench-0", cfg.Runners, 0)
	for k := 1; k < cfg.Engines; k++ {
		c, err := spawnChild(addr, k, cfg)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.children = append(s.children, c)
	}
	return s, nil
}

// runEngineAndRunners starts an engine and the activity runtime, wired as
// `cairn serve` wires them, labelled for the CPU profile. batch 0 and
// concurrency 0 are the defaults. It returns the engine.
func runEngineAndRunners(ctx context.Context, wg *sync.WaitGroup, store *redisstore.Store, cat *interpreter.Catalog, consumer string, concurrency, batch int) *interpreter.Engine {
	reg := activity.NewRegistry()
	wg.Add(2)
	eng := interpreter.NewEngine(store, cat, interpreter.EngineOptions{
		Consumer: consumer, Logger: quietLogger(), Batch: batch,
		Interpreter: interpreter.New(interpreter.Options{LocalActivity: reg.Has}),
	})
	go pprof.Do(ctx, pprof.Labels("role", "engine"), func(ctx context.Context) {
		defer wg.Done()
		_ = eng.Run(ctx)
	})
	go pprof.Do(ctx, pprof.Labels("role", "activity"), func(ctx context.Context) {
		defer wg.Done()
		// As cairn serve wires it: outcomes go straight to the engine.
		_ = activity.NewRuntime(activity.Direct(store, eng), cat, reg, activity.Options{
			Consumer: consumer, Logger: quietLogger(), Concurrency: concurrency,
		}).Run(ctx)
	})
	return eng
}

// stop ends the session. Closing the client right after cancelling cuts
// the engines' and runtime's blocking reads short (they would otherwise
// wait out their 2 s block); nothing is measured any more.
func (s *cairnSession) stop() {
	var wg sync.WaitGroup
	for _, c := range s.children {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop() }()
	}
	s.cancel()
	s.client.Close()
	s.wg.Wait()
	wg.Wait()
	s.board.close()
}

// starter returns the load generator's start function for a shape.
func (s *cairnSession) starter(shape string) starter {
	def := s.defs[shape]
	var input []byte
	switch shape {
	case shapeTwenty:
		input = []byte(`3`)
	default:
		input = []byte(`"user1"`)
	}
	raise := shape == shapeBooking
	return func(ctx context.Context, i int, id string) error {
		iid := interpreter.InstanceID(id)
		// As cairn serve's HTTP starts and raises: the engine runs the
		// first step on the way in (Engine.CreateInstance), and applies
		// the raise at once when it holds the instance
		// (Engine.RaiseEvent).
		if err := s.eng.CreateInstance(ctx, interpreter.Instantiate(def, iid, input, time.Now())); err != nil {
			return err
		}
		if raise {
			return s.eng.RaiseEvent(ctx, iid, "BookingConfirmed", []byte(`true`), time.Now())
		}
		return nil
	}
}

func (s *cairnSession) track(t *tracker) { s.board.cur.Store(t) }

func (s *cairnSession) resetCounts() error {
	s.cnt.reset()
	for _, c := range s.children {
		if _, err := c.ask("reset"); err != nil {
			return err
		}
	}
	return nil
}

// usage returns the round trips counted in every engine process since the
// last reset, and their CPU seconds so far (this process included).
func (s *cairnSession) usage() (counts, float64, error) {
	total := s.cnt.snapshot()
	cpu := processCPU()
	for _, c := range s.children {
		line, err := c.ask("stats")
		if err != nil {
			return counts{}, 0, err
		}
		var st childStats
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			return counts{}, 0, fmt.Errorf("child stats %q: %w", line, err)
		}
		total = total.add(st.Counts)
		cpu += st.CPU
	}
	return total, cpu, nil
}

func (s *cairnSession) newRunID(tag string) string {
	return fmt.Sprintf("%s%d-", tag, s.seq.Add(1))
}

func processCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// board receives every instance's status notices through one pattern
// subscription and hands them to the current tracker.
type board struct {
	ps   *redis.PubSub
	cur  atomic.Pointer[tracker]
	done chan struct{}
}

func subscribeStatus(ctx context.Context, c *redis.Client) (*board, error) {
	ps := c.PSubscribe(ctx, "cairn:{*}:status:*")
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, err
	}
	b := &board{ps: ps, done: make(chan struct{})}
	ch := ps.Channel(redis.WithChannelSize(1 << 16))
	go pprof.Do(context.Background(), pprof.Labels("role", "notices"), func(context.Context) {
		defer close(b.done)
		for m := range ch {
			now := time.Now()
			t := b.cur.Load()
			if t == nil {
				continue
			}
			_, id, ok := strings.Cut(m.Channel, ":status:")
			if !ok {
				continue
			}
			i := t.index(id)
			if i < 0 {
				continue
			}
			var c struct {
				Status interpreter.RuntimeStatus `json:"runtimeStatus"`
				Custom json.RawMessage           `json:"customStatus"`
			}
			if json.Unmarshal([]byte(m.Payload), &c) != nil {
				continue
			}
			switch {
			case c.Status.Terminal():
				t.observe(i, now, c.Status != interpreter.StatusCompleted || t.want == targetWaiting)
			case t.want == targetWaiting && len(c.Custom) > 0 && string(c.Custom) != "null":
				t.observe(i, now, false)
			}
		}
	})
	return b, nil
}

func (b *board) close() {
	b.ps.Close()
	<-b.done
}

// child is an engine process: the bench binary re-executed with
// childEnv set. It answers lines on stdin: reset, stats, stop.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	mu  sync.Mutex
}

const childEnv = "CAIRN_BENCH_ENGINE"

type childStats struct {
	Counts counts  `json:"counts"`
	CPU    float64 `json:"cpu"`
}

func spawnChild(addr string, k int, cfg cairnConfig) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+addr,
		"CAIRN_BENCH_CONSUMER=bench-"+strconv.Itoa(k),
		"CAIRN_BENCH_HISTORY="+strconv.Itoa(cfg.HistoryMax),
		"CAIRN_BENCH_RUNNERS="+strconv.Itoa(cfg.Runners))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := c.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		return nil, fmt.Errorf("engine child did not start: %q %v", line, err)
	}
	return c, nil
}

func (c *child) ask(q string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.in, q+"\n"); err != nil {
		return "", err
	}
	line, err := c.out.ReadString('\n')
	return strings.TrimSpace(line), err
}

func (c *child) stop() {
	c.in.Close() // EOF: the child stops its engine and exits
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// childMain runs an engine process until stdin closes.
func childMain(addr string) {
	hist, _ := strconv.Atoi(os.Getenv("CAIRN_BENCH_HISTORY"))
	runners, _ := strconv.Atoi(os.Getenv("CAIRN_BENCH_RUNNERS"))
	consumer := os.Getenv("CAIRN_BENCH_CONSUMER")
	cnt := newCounter()
	client := newStoreClient(addr, cnt)
	store := redisstore.New(client, redisstore.Options{HistoryMax: hist, Logger: quietLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	if err := store.Init(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "engine child:", err)
		os.Exit(1)
	}
	cat := interpreter.NewCatalog(store)
	var wg sync.WaitGroup
	runEngineAndRunners(ctx, &wg, store, cat, consumer, runners, 0)
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "reset":
			cnt.reset()
			fmt.Println("ok")
		case "stats":
			b, _ := json.Marshal(childStats{Counts: cnt.snapshot(), CPU: processCPU()})
			fmt.Println(string(b))
		default:
			fmt.Println("unknown")
		}
	}
	cancel()
	client.Close() // cuts the blocking reads short
	wg.Wait()
}
