// Command bench measures cairn against a throwaway redis-server and
// compares it with go-workflows v1.2.0 on the same server, then writes
// docs/benchmarks.md and raw JSON. Run it from bench/: go run . (see -h).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

type options struct {
	out, resultsDir, workflows  string
	redisServer, redisBenchmark string
	httpTool                    string
	reps                        int
	quick                       bool
	small, big, paced           int
	rate                        float64
	backgrounds                 []int
	peerBackground              int
	httpConns                   int
	httpDur                     time.Duration
	only                        map[string]bool
	cpuprofile, memprofile      string
	timeout                     time.Duration
	cairnRev                    string
	// ReserveTicket over HTTP against a cairn serve child (httpflow.go).
	cairnBin       string
	flowN          int
	flowConns      int
	flowPoll       time.Duration
	flowDurability string
	// cairn serve's GC settings in the gc section (durable.go).
	flowGC []gcSetting
}

func main() {
	if v := os.Getenv(floorEnv); v != "" {
		floorMain(v)
		return
	}
	if addr := os.Getenv(childEnv); addr != "" {
		childMain(addr)
		return
	}
	var o options
	var only, bgs, gcs string
	flag.StringVar(&o.out, "out", "../docs/benchmarks.md", "the Markdown report to write")
	flag.StringVar(&o.resultsDir, "results", "results", "directory for the raw JSON and profiles")
	flag.StringVar(&o.workflows, "workflows", "../workflows", "cairn's example workflows (reserve-ticket.yaml)")
	flag.StringVar(&o.redisServer, "redis-server", "redis-server", "redis-server binary")
	flag.StringVar(&o.redisBenchmark, "redis-benchmark", "redis-benchmark", "redis-benchmark binary")
	flag.StringVar(&o.httpTool, "http-load", "auto", "GET status load generator: wrk, go, or auto (wrk when on PATH)")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of every run")
	flag.BoolVar(&o.quick, "quick", false, "a quick run: 1 repetition, smaller runs, 10,000 background instances at most")
	flag.IntVar(&o.small, "small", 1000, "instances in the small burst")
	flag.IntVar(&o.big, "big", 10000, "instances in the large burst")
	flag.IntVar(&o.paced, "paced", 800, "instances in the paced run")
	flag.Float64Var(&o.rate, "rate", 200, "starts per second in the paced run")
	flag.StringVar(&bgs, "background", "10000,100000", "waiting instances loaded before the growth runs (0 is the plain run)")
	flag.IntVar(&o.peerBackground, "peer-background", 10000, "the largest background the peer is measured with (loading it runs at the peer's speed)")
	flag.IntVar(&o.httpConns, "http-conns", 64, "GET status connections")
	flag.DurationVar(&o.httpDur, "http-duration", 5*time.Second, "GET status load per repetition")
	flag.StringVar(&only, "only", "", "comma-separated sections to run: cairn, engines2, growth, memory, peer, temporal, http, httpflow, fsync, gc, ceiling, profile (default all)")
	flag.StringVar(&o.cairnBin, "cairn-bin", "", "the cairn binary httpflow runs as cairn serve (default: built from the checkout into a temporary directory)")
	flag.IntVar(&o.flowN, "httpflow-n", 2000, "ReserveTicket instances per httpflow repetition")
	flag.IntVar(&o.flowConns, "httpflow-conns", 32, "httpflow client goroutines, each driving one instance at a time")
	flag.DurationVar(&o.flowPoll, "httpflow-poll", 5*time.Millisecond, "httpflow's GET status poll interval")
	flag.StringVar(&o.flowDurability, "httpflow-durability", "none", "cairn serve's --durability in httpflow")
	flag.StringVar(&gcs, "httpflow-gc", "100,200,400,off/1GiB", "the gc section's settings of cairn serve: GOGC values, each with an optional /GOMEMLIMIT")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole bench process")
	flag.StringVar(&o.memprofile, "memprofile", "", "write an allocation profile of the whole bench process")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "longest wait for one run's instances")
	flag.DurationVar(&quietWait, "quiet-wait", quietWait, "longest wait, before each repetition, for the machine to be quiet (other processes under 0.25 cores)")
	flag.StringVar(&o.cairnRev, "cairn-rev", "", "the cairn revision measured, for the report (default: git describe of the checkout)")
	flag.Parse()
	if o.quick { // smaller defaults; flags given explicitly win
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quick("reps", func() { o.reps = 1 })
		quick("big", func() { o.big = 2000 })
		quick("paced", func() { o.paced = 400 })
		quick("http-duration", func() { o.httpDur = 2 * time.Second })
		quick("background", func() { bgs = "10000" })
		quick("peer-background", func() { o.peerBackground = 2000 })
		quick("httpflow-n", func() { o.flowN = 1000 })
	}
	for _, f := range strings.Split(bgs, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			o.backgrounds = append(o.backgrounds, n)
		}
	}
	var err error
	if o.flowGC, err = parseGCSettings(gcs); err != nil {
		log.Fatal(err)
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.only[s] = true
		}
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, o); err != nil {
		log.Print(err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if o.memprofile != "" {
		f, err := os.Create(o.memprofile)
		if err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
}

func (o options) want(section string) bool { return len(o.only) == 0 || o.only[section] }

// Result is every repetition of one run configuration.
type Result struct {
	System     string   `json:"system"` // cairn | go-workflows | go-workflows default
	Engines    int      `json:"engines"`
	Shape      string   `json:"shape"`
	Mode       string   `json:"mode"`
	Background int      `json:"background"`
	History    string   `json:"history"` // cairn's history retention
	Samples    []Sample `json:"samples"`
	// MemBreakdown: bytes per instance by key (MEMORY USAGE), one repetition.
	MemBreakdown map[string]float64 `json:"memBreakdown,omitempty"`
	Err          string             `json:"error,omitempty"`
}

// HTTPResult is the GET status load against one system.
type HTTPResult struct {
	System  string       `json:"system"`
	Tool    string       `json:"tool"`
	Conns   int          `json:"conns"`
	Waiting int          `json:"waiting"`
	Samples []HTTPSample `json:"samples"`
	Err     string       `json:"error,omitempty"`
}

// Report is everything a run measured; the Markdown is made from it.
type Report struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Machine  Machine   `json:"machine"`
	Options  string    `json:"options"`
	Reps     int       `json:"reps"`
	Results  []Result  `json:"results"`
	HTTP     []HTTPResult
	HTTPFlow []FlowResult `json:"httpFlow,omitempty"`
	// HTTPFlowProfile: cairn serve's profiles under the httpflow load.
	HTTPFlowProfile *FlowProfile         `json:"httpFlowProfile,omitempty"`
	Fsync           *FsyncReport         `json:"fsync,omitempty"`   // ReserveTicket on a Redis with appendfsync always
	ServeGC         []GCResult           `json:"serveGC,omitempty"` // cairn serve under GC settings
	Ceiling         map[string][]float64 `json:"ceiling"`           // command → requests/s per repetition, no pipelining
	Ceiling16       map[string][]float64 `json:"ceilingP16"`        // the same, 16 commands per pipeline
	Profile         *ProfileTop          `json:"profile,omitempty"`
	Notes           []string             `json:"notes,omitempty"`
	Retried         int                  `json:"retried"` // repetitions repeated because other processes disturbed them
}

// Machine describes where the run happened.
type Machine struct {
	NProc    int    `json:"nproc"`
	CPU      string `json:"cpu"`
	MemMB    int    `json:"memMB"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Redis    string `json:"redis"`
	HTTPTool string `json:"httpTool"`
	LoadAvg  string `json:"loadAvg"`
	Cairn    string `json:"cairn"` // the commit measured
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	defs, err := loadCairnDefs(o.workflows)
	if err != nil {
		return err
	}
	srv, err := startRedis(o.redisServer)
	if err != nil {
		return err
	}
	defer srv.stop()
	h := newHarness(srv.addr)
	defer h.c.Close()
	if err := os.MkdirAll(o.resultsDir, 0o755); err != nil {
		return err
	}
	rep := &Report{Started: start.UTC(), Machine: machine(ctx, h, o), Reps: o.reps,
		Options: strings.Join(os.Args[1:], " "),
		Ceiling: map[string][]float64{}, Ceiling16: map[string][]float64{}}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	save := func() {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_ = os.WriteFile(filepath.Join(o.resultsDir, "latest.json"), b, 0o644)
	}

	// A run is one configuration measured o.reps times. Runs of the same
	// shape and mode are interleaved repetition by repetition (cairn, then
	// the peer, then cairn again...), so noise that drifts over time hits
	// both systems alike.
	type run struct {
		res  *Result
		step func(k int) (Sample, error)
		done func()
	}
	// after: "purge" measures the memory left once the run's instances are
	// purged, "expire" once retention expired them.
	cairnRun := func(cfg cairnConfig, r runSpec, hist string, after string) *run {
		res := &Result{System: "cairn", Engines: cfg.Engines, Shape: r.Shape, Mode: r.mode(), History: hist}
		return &run{res: res, step: func(int) (Sample, error) {
			s, err := startCairn(ctx, srv.addr, h, defs, cfg)
			if err != nil {
				return Sample{}, err
			}
			defer s.stop()
			smp, err := measure(ctx, s, h, r, o.timeout)
			if err == nil && after == "purge" {
				res.MemBreakdown, err = memoryBreakdown(ctx, h, smp)
			}
			switch {
			case err != nil:
			case after == "purge":
				smp.PurgedMemBytes, err = purgeFinished(ctx, s, h, smp)
			case after == "expire":
				smp.PurgedMemBytes, err = expireFinished(ctx, s, h, smp)
			}
			return smp, err
		}}
	}
	peerRun := func(cfg peerConfig, r runSpec, bg int) *run {
		name := "go-workflows"
		if !cfg.Tuned {
			name = "go-workflows default"
		}
		res := &Result{System: name, Engines: 1, Shape: r.Shape, Mode: r.mode(), Background: bg}
		var s *peerSession // kept across repetitions when it holds a background
		return &run{res: res, step: func(int) (Sample, error) {
			if s == nil {
				var err error
				if s, err = startPeer(ctx, srv.addr, h, cfg); err == nil && bg > 0 {
					err = loadBackground(ctx, s, h, bg, o.timeout, logf)
				}
				if err != nil {
					return Sample{}, err
				}
			}
			smp, err := measure(ctx, s, h, r, o.timeout)
			if bg == 0 {
				s.stop()
				s = nil
			}
			return smp, err
		}, done: func() {
			if s != nil {
				s.stop()
			}
		}}
	}
	interleave := func(runs ...*run) {
		for k := 0; k < o.reps && ctx.Err() == nil; k++ {
			for _, r := range runs {
				if r == nil || r.res.Err != "" {
					continue
				}
				smp, err := r.step(k)
				if err == nil && smp.Foreign > disturbedCores && ctx.Err() == nil {
					// Other processes took the cores: do it again, once.
					rep.Retried++
					logf("%s %s %s engines=%d: other processes used %.2f cores; repeating", r.res.System, r.res.Shape, r.res.Mode, r.res.Engines, smp.Foreign)
					smp, err = r.step(k)
				}
				res := r.res
				if err != nil {
					res.Err = err.Error()
					logf("%s %s %s engines=%d: %v", res.System, res.Shape, res.Mode, res.Engines, err)
					continue
				}
				res.Samples = append(res.Samples, smp)
				logf("%-20s %-22s %-12s engines=%d bg=%-6d %s: %7.0f/s p50 %6.2f p99 %6.2f ms, %5.2f trips, %5.1f cmds, %5.0f B, other load %.2f",
					res.System, res.Shape, res.Mode, res.Engines, res.Background, res.History, smp.PerSec, smp.P50, smp.P99, smp.Trips, smp.Cmds, smp.MemBytes, smp.Foreign)
			}
		}
		for _, r := range runs {
			if r == nil {
				continue
			}
			if r.done != nil {
				r.done()
			}
			rep.Results = append(rep.Results, *r.res)
		}
		save()
	}
	burstSmall := func(shape string) runSpec { return runSpec{Shape: shape, N: o.small} }
	burstBig := func(shape string) runSpec { return runSpec{Shape: shape, N: o.big, Mem: true} }
	paced := func(shape string) runSpec {
		return runSpec{Shape: shape, N: o.paced, Rate: o.rate, Mem: shape == shapeWait}
	}
	tuned := peerConfig{Tuned: true}
	cairnOn, twoOn, peerOn := o.want("cairn"), o.want("engines2"), o.want("peer")
	// Temporal (temporal.go): a dev-server set-up in a child process, a
	// fresh one per repetition, ReserveTicket and one activity.
	temporalRun := func(r runSpec) *run {
		res := &Result{System: "temporal", Engines: 1, Shape: r.Shape, Mode: r.mode()}
		return &run{res: res, step: func(int) (Sample, error) { return temporalMeasure(ctx, h, r, o.timeout, o.resultsDir, logf) }}
	}
	defer removeTemporalBuild()

	for _, shape := range []string{shapeBooking, shapeOne, shapeTwenty, shapeWait} {
		specs := []runSpec{burstSmall(shape), burstBig(shape), paced(shape)}
		if shape == shapeWait {
			specs = []runSpec{paced(shape)}
		}
		for _, r := range specs {
			var runs []*run
			if cairnOn {
				after := ""
				if shape == shapeBooking && r.N == o.big && r.Rate == 0 {
					after = "purge"
				}
				runs = append(runs, cairnRun(cairnConfig{Engines: 1}, r, "default", after))
			}
			if peerOn && shape != shapeTwenty {
				runs = append(runs, peerRun(tuned, r, 0))
			}
			if o.want("temporal") && (shape == shapeBooking || shape == shapeOne) {
				runs = append(runs, temporalRun(r))
			}
			if twoOn {
				r2 := r
				r2.Mem = false // the same data as with one engine
				runs = append(runs, cairnRun(cairnConfig{Engines: 2}, r2, "default", ""))
			}
			if shape == shapeBooking && r.N == o.small && r.Rate == 0 && peerOn {
				runs = append(runs, peerRun(peerConfig{}, r, 0)) // the library's defaults
			}
			interleave(runs...)
		}
	}
	if o.want("memory") {
		cfg := cairnConfig{Engines: 1, HistoryMax: redisstore.NoHistory}
		// Retention on (an age that does not pass during the run, so the
		// finished instances are noted and kept), then expired.
		kept := cairnConfig{Engines: 1, Retention: redisstore.Retention{MaxAge: 24 * time.Hour}}
		interleave(cairnRun(cfg, burstBig(shapeBooking), "none", ""), cairnRun(cfg, paced(shapeWait), "none", ""),
			cairnRun(kept, burstBig(shapeBooking), "retention", "expire"))
	}
	if o.want("growth") {
		for _, bg := range o.backgrounds {
			big := burstBig(shapeBooking)
			big.Mem = false
			runs := []runSpec{burstSmall(shapeBooking), big, paced(shapeBooking)}
			rep.Results = append(rep.Results, cairnGrowth(ctx, o, srv.addr, h, defs, bg, runs, &rep.Retried, logf)...)
			save()
			if peerOn {
				if bg > o.peerBackground {
					rep.Notes = append(rep.Notes, fmt.Sprintf("go-workflows was not measured with %s waiting instances: loading them at its speed would not fit the run (-peer-background=%d enables it).", count(bg), bg))
					continue
				}
				rep.Results = append(rep.Results, peerGrowth(ctx, o, srv.addr, h, bg, []runSpec{burstSmall(shapeBooking), paced(shapeBooking)}, &rep.Retried, logf)...)
				save()
			}
		}
	}
	if o.want("http") {
		tool := rep.Machine.HTTPTool
		rep.HTTP = append(rep.HTTP, httpCairn(ctx, o, srv.addr, h, defs, tool, logf))
		save()
		if peerOn || o.only["http"] {
			rep.HTTP = append(rep.HTTP, httpPeer(ctx, o, srv.addr, h, tool, logf))
			save()
		}
	}
	if o.want("httpflow") {
		defer removeCairnBuild()
		rep.HTTPFlow = httpFlow(ctx, o, h, srv.addr, rep, logf)
		save()
	}
	if o.want("fsync") {
		defer removeCairnBuild()
		rep.Fsync = fsyncSection(ctx, o, srv.addr, h, defs, rep, logf)
		save()
	}
	if o.want("gc") {
		defer removeCairnBuild()
		rep.ServeGC = gcSection(ctx, o, srv.addr, h, rep, logf)
		save()
	}
	if o.want("ceiling") {
		if err := ceiling(ctx, o, srv.addr, h, rep, logf); err != nil {
			rep.Notes = append(rep.Notes, "redis-benchmark: "+err.Error())
		}
		save()
	}
	if o.want("profile") {
		p, err := profileRun(ctx, o, srv.addr, h, defs, burstBig(shapeBooking), logf)
		if err != nil {
			rep.Notes = append(rep.Notes, "profile: "+err.Error())
		}
		if hp := filepath.Join(o.resultsDir, "cpu-http.pprof"); p != nil && o.want("http") {
			if _, err := os.Stat(hp); err == nil {
				p.HTTP = pprofTop(ctx, hp)
				p.HTTPCum = pprofTop(ctx, "-cum", hp)
				p.Files = append(p.Files, hp)
			}
		}
		rep.Profile = p
		save()
	}
	rep.Seconds = time.Since(start).Seconds()
	save()
	stamp := filepath.Join(o.resultsDir, start.UTC().Format("20060102T150405Z")+".json")
	b, _ := json.MarshalIndent(rep, "", "  ")
	_ = os.WriteFile(stamp, b, 0o644)
	md := renderMarkdown(rep) + keptTail(o.out)
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s", o.out, stamp)
	return ctx.Err()
}

// purgeFinished purges the run's finished instances (PurgeMany, what
// DELETE /instances?createdTimeFrom=… does) and returns the memory per
// instance the run still holds afterwards.
func purgeFinished(ctx context.Context, s *cairnSession, h *harness, smp Sample) (float64, error) {
	before := h.settle(ctx)
	purged, err := s.store.PurgeMany(ctx, smp.Started.Add(-time.Millisecond), time.Now().Add(time.Minute),
		[]interpreter.RuntimeStatus{interpreter.StatusCompleted})
	if err != nil {
		return 0, err
	}
	if purged != smp.N {
		return 0, fmt.Errorf("purged %d instances, want %d", purged, smp.N)
	}
	after := h.settle(ctx)
	return smp.MemBytes - float64(before-after)/float64(smp.N), nil
}

// expireFinished lets retention expire the run's finished instances (as
// the engine does every 5 s, here at a clock past their age) and returns
// the memory per instance the run still holds afterwards.
func expireFinished(ctx context.Context, s *cairnSession, h *harness, smp Sample) (float64, error) {
	before := h.settle(ctx)
	at := time.Now().Add(48 * time.Hour)
	expired := 0
	for p := 0; p < s.store.Partitions(); p++ {
		for {
			n, err := s.store.ExpireFinished(ctx, p, at)
			if err != nil {
				return 0, err
			}
			expired += n
			if n == 0 {
				break
			}
		}
	}
	if expired < smp.N {
		return 0, fmt.Errorf("retention expired %d instances, want %d", expired, smp.N)
	}
	after := h.settle(ctx)
	return smp.MemBytes - float64(before-after)/float64(smp.N), nil
}

// loadBackground starts n idle instances (ReserveTicket waiting for an
// event with a 1 h timeout) as fast as the system takes them.
func loadBackground(ctx context.Context, sys system, h *harness, n int, timeout time.Duration, logf func(string, ...any)) error {
	t0 := time.Now()
	t := newTracker(sys.newRunID("bg"), n, targetWaiting)
	sys.track(t)
	if err := runLoad(ctx, t, 0, 64, sys.starter(shapeIdle)); err != nil {
		return err
	}
	if err := t.wait(ctx, timeout+time.Duration(n/100)*time.Second); err != nil {
		return err
	}
	sys.track(nil)
	logf("loaded %d waiting instances in %.1fs", n, time.Since(t0).Seconds())
	return nil
}

// growthRuns measures runs on a system holding bg waiting instances,
// loaded once by load.
func growthRuns(ctx context.Context, o options, h *harness, sys system, system string, bg int, load func() error, runs []runSpec, retried *int, logf func(string, ...any)) []Result {
	var out []Result
	err := load()
	for _, r := range runs {
		res := Result{System: system, Engines: 1, Shape: r.Shape, Mode: r.mode(), Background: bg, History: "default"}
		for k := 0; k < o.reps && err == nil && ctx.Err() == nil; k++ {
			var smp Sample
			if smp, err = measure(ctx, sys, h, r, o.timeout); err != nil {
				break
			}
			if smp.Foreign > disturbedCores && ctx.Err() == nil {
				*retried++
				logf("%s %s %s bg=%d: other processes used %.2f cores; repeating", system, r.Shape, r.mode(), bg, smp.Foreign)
				if smp, err = measure(ctx, sys, h, r, o.timeout); err != nil {
					break
				}
			}
			res.Samples = append(res.Samples, smp)
			logf("%-20s %-22s %-12s bg=%-6d: %7.0f/s p50 %6.2f p99 %6.2f ms, %5.2f trips, %5.1f cmds, other load %.2f",
				system, r.Shape, r.mode(), bg, smp.PerSec, smp.P50, smp.P99, smp.Trips, smp.Cmds, smp.Foreign)
		}
		if err != nil {
			res.Err = err.Error()
		}
		out = append(out, res)
	}
	return out
}

// cairnGrowth: cairn with bg waiting instances, loaded by two extra
// in-process engines taking large batches (stopped before measuring), so
// 100,000 load in seconds.
func cairnGrowth(ctx context.Context, o options, addr string, h *harness, defs cairnDefs, bg int, runs []runSpec, retried *int, logf func(string, ...any)) []Result {
	s, err := startCairn(ctx, addr, h, defs, cairnConfig{Engines: 1})
	if err != nil {
		return []Result{{System: "cairn", Background: bg, Err: err.Error()}}
	}
	defer s.stop()
	return growthRuns(ctx, o, h, s, "cairn", bg, func() error {
		lctx, lcancel := context.WithCancel(ctx)
		defer lcancel()
		var wg sync.WaitGroup
		for k := 0; k < 2; k++ {
			runEngineAndRunners(lctx, &wg, s.store, s.cat, fmt.Sprintf("loader-%d", k), 64, 1024)
		}
		err := loadBackground(ctx, s, h, bg, o.timeout, logf)
		lcancel()
		wg.Wait()
		return err
	}, runs, retried, logf)
}

// peerGrowth: the peer (tuned) with bg waiting instances.
func peerGrowth(ctx context.Context, o options, addr string, h *harness, bg int, runs []runSpec, retried *int, logf func(string, ...any)) []Result {
	s, err := startPeer(ctx, addr, h, peerConfig{Tuned: true})
	if err != nil {
		return []Result{{System: "go-workflows", Background: bg, Err: err.Error()}}
	}
	defer s.stop()
	return growthRuns(ctx, o, h, s, "go-workflows", bg, func() error {
		return loadBackground(ctx, s, h, bg, o.timeout, logf)
	}, runs, retried, logf)
}

// httpCairn: GET status over HTTP (the Durable Functions API) on 1,000
// waiting instances.
func httpCairn(ctx context.Context, o options, addr string, h *harness, defs cairnDefs, tool string, logf func(string, ...any)) HTTPResult {
	res := HTTPResult{System: "cairn", Tool: tool, Conns: o.httpConns, Waiting: 1000}
	s, err := startCairn(ctx, addr, h, defs, cairnConfig{Engines: 1})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer s.stop()
	t := newTracker("http-", 1000, targetWaiting)
	s.track(t)
	if err := runLoad(ctx, t, 0, 32, s.starter(shapeIdle)); err == nil {
		err = t.wait(ctx, o.timeout)
	}
	if err != nil {
		res.Err = err.Error()
		return res
	}
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = "/runtime/webhooks/durabletask/instances/" + t.id(i)
	}
	handler := httpapi.New(httpapi.Config{Backend: s.store, Catalog: s.cat, Logger: quietLogger()})
	prof := ""
	if o.want("profile") && o.cpuprofile == "" {
		prof = filepath.Join(o.resultsDir, "cpu-http.pprof")
	}
	res.Samples, err = httpRuns(ctx, o, h, handler, paths, tool, func(c int) bool { return c == http.StatusAccepted }, "cairn", prof, logf)
	if err != nil {
		res.Err = err.Error()
	}
	return res
}

func httpPeer(ctx context.Context, o options, addr string, h *harness, tool string, logf func(string, ...any)) HTTPResult {
	res := HTTPResult{System: "go-workflows", Tool: tool, Conns: o.httpConns, Waiting: 1000}
	s, err := startPeer(ctx, addr, h, peerConfig{Tuned: true})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer s.stop()
	t := newTracker("http-", 1000, targetWaiting)
	s.track(t)
	if err := runLoad(ctx, t, 0, 32, s.starter(shapeIdle)); err == nil {
		err = t.wait(ctx, o.timeout)
	}
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.Samples, err = httpRuns(ctx, o, h, s.statusHandler(), s.statusPaths(), tool, func(c int) bool { return c == http.StatusOK }, "go-workflows", "", logf)
	if err != nil {
		res.Err = err.Error()
	}
	return res
}

// httpRuns serves handler and loads it o.reps times; with prof set, one
// more load runs under the CPU profiler and writes prof.
func httpRuns(ctx context.Context, o options, h *harness, handler http.Handler, paths []string, tool string, ok func(int) bool, name, prof string, logf func(string, ...any)) ([]HTTPSample, error) {
	base, stop, err := serve(handler)
	if err != nil {
		return nil, err
	}
	defer stop()
	load := func(d time.Duration) (HTTPSample, error) {
		if tool == "wrk" {
			return wrkLoad(ctx, "wrk", base, paths, o.httpConns, d)
		}
		return goLoad(ctx, base, paths, o.httpConns, d, ok), nil
	}
	if _, err := load(time.Second); err != nil { // warm-up
		return nil, err
	}
	var out []HTTPSample
	for k := 0; k < o.reps && ctx.Err() == nil; k++ {
		waitQuiet(ctx, quietCores, quietWait)
		st0, err := h.stats(ctx)
		if err != nil {
			return out, err
		}
		cpu0 := processCPU()
		smp, err := load(o.httpDur)
		if err != nil {
			return out, err
		}
		st1, err := h.stats(ctx)
		if err != nil {
			return out, err
		}
		if smp.Requests > 0 {
			smp.RedisUS = (st1.cpuSec - st0.cpuSec) * 1e6 / float64(smp.Requests)
			smp.ServerUS = (processCPU() - cpu0) * 1e6 / float64(smp.Requests)
		}
		out = append(out, smp)
		logf("GET status %-12s %s: %8.0f req/s p50 %.2f p99 %.2f ms errors %d", name, tool, smp.ReqPerSec, smp.P50, smp.P99, smp.Errors)
	}
	if prof != "" && ctx.Err() == nil {
		f, err := os.Create(prof)
		if err != nil {
			return out, err
		}
		if err := pprof.StartCPUProfile(f); err == nil {
			_, err = load(o.httpDur)
			pprof.StopCPUProfile()
		}
		f.Close()
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func ceiling(ctx context.Context, o options, addr string, h *harness, rep *Report, logf func(string, ...any)) error {
	bin, err := exec.LookPath(o.redisBenchmark)
	if err != nil {
		return err
	}
	for k := 0; k < o.reps; k++ {
		for _, pipe := range []int{1, 16} {
			args, err := prepareCeiling(ctx, h.c)
			if err != nil {
				return err
			}
			n := 100000
			if o.quick {
				n = 30000
			}
			for _, cmd := range ceilingCommands {
				waitQuiet(ctx, quietCores, quietWait)
				rps, err := redisBenchmark(ctx, bin, addr, n*pipe/max(1, pipe/4), pipe, args[cmd])
				if err != nil {
					return err
				}
				if pipe == 1 {
					rep.Ceiling[cmd] = append(rep.Ceiling[cmd], rps)
				} else {
					rep.Ceiling16[cmd] = append(rep.Ceiling16[cmd], rps)
				}
				logf("redis-benchmark %-10s -P %-2d: %9.0f requests/s", cmd, pipe, rps)
			}
		}
	}
	return h.flush(ctx)
}

func machine(ctx context.Context, h *harness, o options) Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.TrimPrefix(strings.Split(string(b), "\n")[0], "MemTotal:"), "%d", &kb)
		m.MemMB = kb / 1024
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	m.Cairn = o.cairnRev
	if m.Cairn == "" {
		root := filepath.Join(o.workflows, "..")
		if out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%h %s").Output(); err == nil {
			m.Cairn = strings.TrimSpace(string(out))
			if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!docs").Output(); err == nil && len(st) > 0 {
				m.Cairn += " (with uncommitted changes)"
			}
		}
	}
	if info, err := h.c.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				m.Redis = v
			}
		}
	}
	switch o.httpTool {
	case "wrk", "go":
		m.HTTPTool = o.httpTool
	default:
		m.HTTPTool = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			m.HTTPTool = "wrk"
		}
	}
	return m
}
