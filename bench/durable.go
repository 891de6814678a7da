package main

// Two variants issue 20 asks figures for. ReserveTicket on a durable
// Redis (appendonly yes, appendfsync always: Redis answers a write only
// once it is on disk), in process and over HTTP, next to the same runs on
// the persistence-off server, repetition by repetition. And cairn serve
// over HTTP under GC settings given in its environment (GOGC,
// GOMEMLIMIT), to choose serve's defaults from.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/cairnhq/cairn/redisstore"
)

// FsyncRun is ReserveTicket on one of the two servers.
type FsyncRun struct {
	Redis  string `json:"redis"` // persistence off | appendfsync always
	InProc Result `json:"inProcess"`
	// Paced is the paced run in process: latency without a queue.
	Paced Result     `json:"inProcessPaced"`
	HTTP  FlowResult `json:"http"` // the poll variant
}

// FsyncReport is the durable-Redis section.
type FsyncReport struct {
	Disk string     `json:"disk"` // the file system the append-only file is on
	Runs []FsyncRun `json:"runs"`
	Err  string     `json:"error,omitempty"`
}

const (
	redisOff    = "persistence off"
	redisAlways = "appendfsync always"
)

// fsyncSection measures ReserveTicket against the bench's usual Redis
// (addr, h) and against a second redis-server it starts with appendfsync
// always: a burst of o.big in process, as the cairn section runs it, and
// a paced run of o.paced at o.rate (the latency of one instance, not of
// a queue), and the httpflow poll variant against cairn serve --durability none or
// fsync.
func fsyncSection(ctx context.Context, o options, addr string, h *harness, defs cairnDefs, rep *Report, logf func(string, ...any)) *FsyncReport {
	out := &FsyncReport{}
	srv, err := startRedisWith(o.redisServer, "--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		out.Err = err.Error()
		return out
	}
	defer srv.stop()
	h2 := newHarness(srv.addr)
	defer h2.c.Close()
	if b, err := exec.Command("df", "-PT", srv.dir).Output(); err == nil {
		if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) == 2 {
			if f := strings.Fields(lines[1]); len(f) >= 2 {
				out.Disk = f[0] + " (" + f[1] + ")"
			}
		}
	}
	bin, err := cairnBin(ctx, o, logf)
	if err != nil {
		out.Err = err.Error()
		return out
	}
	type side struct {
		addr       string
		h          *harness
		durability redisstore.Durability
	}
	sides := []side{{addr, h, redisstore.DurabilityNone}, {srv.addr, h2, redisstore.DurabilityFsync}}
	burst := runSpec{Shape: shapeBooking, N: o.big}
	paced := runSpec{Shape: shapeBooking, N: o.paced, Rate: o.rate}
	for _, name := range []string{redisOff, redisAlways} {
		out.Runs = append(out.Runs, FsyncRun{Redis: name,
			InProc: Result{System: "cairn", Engines: 1, Shape: shapeBooking, Mode: burst.mode(), History: "default"},
			Paced:  Result{System: "cairn", Engines: 1, Shape: shapeBooking, Mode: paced.mode(), History: "default"},
			HTTP:   FlowResult{Variant: flowPoll, Conns: o.flowConns, PollMS: float64(o.flowPoll.Microseconds()) / 1000}})
	}
	// retry repeats a repetition once when other processes took the cores.
	retry := func(what string, foreign func() float64, step func() error) error {
		err := step()
		if err == nil && foreign() > disturbedCores && ctx.Err() == nil {
			rep.Retried++
			logf("%s: other processes used %.2f cores; repeating", what, foreign())
			err = step()
		}
		return err
	}
	for k := 0; k < o.reps && ctx.Err() == nil; k++ {
		for i, sd := range sides {
			r := &out.Runs[i]
			for _, x := range []struct {
				res  *Result
				spec runSpec
			}{{&r.InProc, burst}, {&r.Paced, paced}} {
				if x.res.Err != "" {
					continue
				}
				var smp Sample
				err := retry("fsync in process "+r.Redis+" "+x.res.Mode, func() float64 { return smp.Foreign }, func() error {
					s, err := startCairn(ctx, sd.addr, sd.h, defs, cairnConfig{Engines: 1, Durability: sd.durability})
					if err != nil {
						return err
					}
					defer s.stop()
					smp, err = measure(ctx, s, sd.h, x.spec, o.timeout)
					return err
				})
				if err != nil {
					x.res.Err = err.Error()
					logf("fsync in process %s %s: %v", r.Redis, x.res.Mode, err)
					continue
				}
				x.res.Samples = append(x.res.Samples, smp)
				logf("fsync %-18s in process %-12s %7.0f/s p50 %6.2f p99 %6.2f ms, Redis %4.0f µs, cairn %4.0f µs, other load %.2f",
					r.Redis, x.res.Mode, smp.PerSec, smp.P50, smp.P99, smp.RedisUS, smp.ClientUS, smp.Foreign)
			}
			if r.HTTP.Err == "" {
				r.HTTP.Durability = sd.durability.String()
				sp := flowSpec{variant: flowPoll, h: sd.h, addr: sd.addr, durability: sd.durability.String(), tag: "-fs" + fmt.Sprint(i)}
				var smp FlowSample
				err := retry("fsync over HTTP "+r.Redis, func() float64 { return smp.Foreign }, func() (err error) {
					smp, err = flowMeasure(ctx, o, sp, bin, k)
					return err
				})
				if err != nil {
					r.HTTP.Err = err.Error()
					logf("fsync over HTTP %s: %v", r.Redis, err)
				} else {
					r.HTTP.Samples = append(r.HTTP.Samples, smp)
					logf("fsync %-18s over HTTP poll %-8s %7.0f/s p50 %6.2f p99 %6.2f ms, serve %4.0f µs/instance, Redis %4.0f µs, other load %.2f",
						r.Redis, count(smp.N), smp.PerSec, smp.P50, smp.P99, smp.ServerUS, smp.RedisUS, smp.Foreign)
				}
			}
		}
	}
	return out
}

// gcSetting is one -httpflow-gc entry: GOGC, and GOMEMLIMIT or "".
type gcSetting struct{ GOGC, MemLimit string }

// parseGCSettings reads "100,200,400,off/1GiB": GOGC values, each with
// an optional /GOMEMLIMIT.
func parseGCSettings(s string) ([]gcSetting, error) {
	var out []gcSetting
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		gogc, limit, _ := strings.Cut(f, "/")
		if gogc == "" {
			return nil, fmt.Errorf("-httpflow-gc: %q has no GOGC (write 100/1GiB, off/1GiB)", f)
		}
		out = append(out, gcSetting{gogc, limit})
	}
	return out, nil
}

func (g gcSetting) String() string {
	if g.MemLimit == "" {
		return "GOGC=" + g.GOGC
	}
	return "GOGC=" + g.GOGC + " GOMEMLIMIT=" + g.MemLimit
}

// env sets both variables, so that none leaks in from the bench's own
// environment ("off" is the runtime's own word for no limit).
func (g gcSetting) env() []string {
	limit := g.MemLimit
	if limit == "" {
		limit = "off"
	}
	return []string{"GOGC=" + g.GOGC, "GOMEMLIMIT=" + limit}
}

// GCResult is cairn serve's httpflow poll variant under one GC setting.
type GCResult struct {
	Setting string     `json:"setting"`
	Env     []string   `json:"env"`
	HTTP    FlowResult `json:"http"`
}

// gcSection runs the httpflow poll variant against cairn serve with each
// of o.flowGC in its environment, interleaved repetition by repetition.
func gcSection(ctx context.Context, o options, addr string, h *harness, rep *Report, logf func(string, ...any)) []GCResult {
	out := make([]GCResult, len(o.flowGC))
	for i, g := range o.flowGC {
		out[i] = GCResult{Setting: g.String(), Env: g.env(),
			HTTP: FlowResult{Variant: flowPoll, Durability: o.flowDurability, Conns: o.flowConns, PollMS: float64(o.flowPoll.Microseconds()) / 1000}}
	}
	bin, err := cairnBin(ctx, o, logf)
	if err != nil {
		for i := range out {
			out[i].HTTP.Err = err.Error()
		}
		return out
	}
	for k := 0; k < o.reps && ctx.Err() == nil; k++ {
		for i := range out {
			r := &out[i]
			if r.HTTP.Err != "" {
				continue
			}
			sp := flowSpec{variant: flowPoll, h: h, addr: addr, durability: o.flowDurability, env: r.Env, gctrace: true, tag: fmt.Sprintf("-gc%d", i)}
			smp, err := flowMeasure(ctx, o, sp, bin, k)
			if err == nil && smp.Foreign > disturbedCores && ctx.Err() == nil {
				rep.Retried++
				logf("gc %s: other processes used %.2f cores; repeating", r.Setting, smp.Foreign)
				smp, err = flowMeasure(ctx, o, sp, bin, k)
			}
			if err != nil {
				r.HTTP.Err = err.Error()
				logf("gc %s: %v", r.Setting, err)
				continue
			}
			r.HTTP.Samples = append(r.HTTP.Samples, smp)
			logf("gc %-26s %7.0f/s p50 %6.2f p99 %6.2f ms, serve %4.0f µs/instance %4.1f µs/call, %5.1f GCs/1,000, GC %4.0f µs/instance, peak RSS %5.1f MB, other load %.2f",
				r.Setting, smp.PerSec, smp.P50, smp.P99, smp.ServerUS, smp.ServerUSPerCall, smp.GCPer1000, smp.GCCPUUS, smp.PeakRSSMB, smp.Foreign)
		}
	}
	return out
}

func renderFsync(b *strings.Builder, rep *Report) {
	x := rep.Fsync
	if x == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## ReserveTicket on a durable Redis (appendfsync always)\n\n")
	w("The bench starts a second redis-server with `--appendonly yes --appendfsync always`, its append-only file on %s, so Redis answers a write only once it is on disk; ", or(x.Disk, "the temporary directory's file system"))
	w("cairn runs the same ReserveTicket against it and against the usual persistence-off server, repetition by repetition: ")
	w("**in process**, a burst and a paced run as in the throughput section (one engine; its store with `Durability: fsync`, which checks the server's setting; the paced run's latency is one instance's, without a queue), and ")
	w("**over HTTP**, the poll variant of ReserveTicket over HTTP against `cairn serve --durability fsync` (`none` on the persistence-off server). ")
	w("Ratios are appendfsync always ÷ persistence off (below 1 for throughput is the cost of durability; above 1 for latency).\n\n")
	if x.Err != "" {
		w("⚠ %s\n\n", x.Err)
	}
	w("| run | Redis | instances/s | p50 ms | p99 ms | Redis CPU µs/instance | cairn CPU µs/instance | Redis commands/instance |\n")
	w("|---|---|---|---|---|---|---|---|\n")
	for _, pick := range []func(FsyncRun) Result{func(r FsyncRun) Result { return r.InProc }, func(r FsyncRun) Result { return r.Paced }} {
		for _, r := range x.Runs {
			res := pick(r)
			if ss := res.Samples; len(ss) > 0 {
				w("| in process, %s%s | %s | %s | %s | %s | %s | %s | %s |\n", res.Mode, mark(ss), r.Redis,
					cell(field(ss, perSec)), cell(field(ss, p50)), cell(field(ss, p99)), cell(field(ss, rcpu)), cell(field(ss, ccpu)), cell(field(ss, cmds)))
			}
			if res.Err != "" {
				w("| in process, %s | %s | ⚠ %s ||||||\n", res.Mode, r.Redis, res.Err)
			}
		}
	}
	for _, r := range x.Runs {
		if ss := r.HTTP.Samples; len(ss) > 0 {
			g := func(get func(FlowSample) float64) string { return cell(flowField(ss, get)) }
			w("| over HTTP, poll, %s%s | %s | %s | %s | %s | %s | %s (cairn serve) | %s |\n", count(ss[0].N), flowMark(ss), r.Redis,
				g(flowPerSec), g(func(s FlowSample) float64 { return s.P50 }), g(func(s FlowSample) float64 { return s.P99 }),
				g(func(s FlowSample) float64 { return s.RedisUS }), g(func(s FlowSample) float64 { return s.ServerUS }), g(func(s FlowSample) float64 { return s.Cmds }))
		}
		if r.HTTP.Err != "" {
			w("| over HTTP | %s | ⚠ %s ||||||\n", r.Redis, r.HTTP.Err)
		}
	}
	w("\n")
	if len(x.Runs) == 2 {
		off, on := x.Runs[0], x.Runs[1]
		if a, b := on.InProc.Samples, off.InProc.Samples; len(a) > 0 && len(b) > 0 {
			w("- in process (%s): instances/s **%s**, p50 %s, p99 %s.\n", on.InProc.Mode,
				ratio(field(a, perSec), field(b, perSec)), ratio(field(a, p50), field(b, p50)), ratio(field(a, p99), field(b, p99)))
		}
		if a, b := on.Paced.Samples, off.Paced.Samples; len(a) > 0 && len(b) > 0 {
			w("- in process (%s): p50 **%s** (%s ms more), p99 %s.\n", on.Paced.Mode,
				ratio(field(a, p50), field(b, p50)), num(median(field(a, p50))-median(field(b, p50))), ratio(field(a, p99), field(b, p99)))
		}
		if a, b := on.HTTP.Samples, off.HTTP.Samples; len(a) > 0 && len(b) > 0 {
			f := func(ss []FlowSample, get func(FlowSample) float64) []float64 { return flowField(ss, get) }
			lat50 := func(s FlowSample) float64 { return s.P50 }
			lat99 := func(s FlowSample) float64 { return s.P99 }
			w("- over HTTP (poll, %d connections): instances/s **%s**, p50 %s, p99 %s.\n", on.HTTP.Conns,
				ratio(f(a, flowPerSec), f(b, flowPerSec)), ratio(f(a, lat50), f(b, lat50)), ratio(f(a, lat99), f(b, lat99)))
		}
		w("\n")
	}
}

func renderServeGC(b *strings.Builder, rep *Report) {
	if len(rep.ServeGC) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	first := rep.ServeGC[0].HTTP
	w("## cairn serve under GC settings\n\n")
	w("The poll variant of ReserveTicket over HTTP (%d connections, %g ms poll, `--durability %s`) against cairn serve with each setting in its environment (GOGC and GOMEMLIMIT both set, `off` where none is named), ", first.Conns, first.PollMS, first.Durability)
	w("settings interleaved repetition by repetition. GODEBUG=gctrace=1 is on in every run: collections and their CPU (the sum of gctrace's `ms cpu` parts: assist, background and idle marking, and the stop-the-world phases) are counted over the measured window; ")
	w("peak RSS is the child's VmHWM (`/proc/<pid>/status`) at the end of the repetition, its start and warm-up included. ")
	w("Ratios are each setting's median ÷ %s's; a difference within the repetitions' min–max spread is noise.\n\n", rep.ServeGC[0].Setting)
	w("| setting | instances/s | p50 ms | p99 ms | serve CPU µs/instance | serve CPU µs/call | GC cycles per 1,000 instances | GC CPU µs/instance | serve peak RSS MB | ratio instances/s | ratio CPU/instance |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|\n")
	base := first.Samples
	cpu := func(s FlowSample) float64 { return s.ServerUS }
	for _, r := range rep.ServeGC {
		ss := r.HTTP.Samples
		if r.HTTP.Err != "" {
			w("| %s | ⚠ %s ||||||||||\n", r.Setting, r.HTTP.Err)
		}
		if len(ss) == 0 {
			continue
		}
		g := func(get func(FlowSample) float64) string { return cell(flowField(ss, get)) }
		w("| %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Setting, flowMark(ss),
			g(flowPerSec), g(func(s FlowSample) float64 { return s.P50 }), g(func(s FlowSample) float64 { return s.P99 }),
			g(cpu), g(func(s FlowSample) float64 { return s.ServerUSPerCall }),
			g(func(s FlowSample) float64 { return s.GCPer1000 }), g(func(s FlowSample) float64 { return s.GCCPUUS }),
			g(func(s FlowSample) float64 { return s.PeakRSSMB }),
			ratio(flowField(ss, flowPerSec), flowField(base, flowPerSec)), ratio(flowField(ss, cpu), flowField(base, cpu)))
	}
	w("\n")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
