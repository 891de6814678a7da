package main

// ReserveTicket over HTTP: the cairn binary runs as `cairn serve` in a
// child process (API and engine, as a user runs it) against the bench's
// redis-server, and an independent client in this process drives each
// instance the way a Durable Functions client does: POST start, POST
// raiseEvent, then either poll GET status or follow the status stream
// (SSE) until Completed. The server's CPU comes from /proc/<pid>/stat, so
// it is the child's alone, apart from the client's.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	"syscall"
	"time"
)

// Variants of the client's wait for Completed.
const (
	flowPoll = "poll" // GET status every poll interval
	flowSSE  = "sse"  // GET /v1/instances/{id}/events, read until Completed
)

// FlowSample is one repetition of ReserveTicket driven over HTTP.
type FlowSample struct {
	Client  string  `json:"client"` // the bench's HTTP client: raw or net
	N       int     `json:"n"`
	Seconds float64 `json:"seconds"` // first start → last Completed seen
	PerSec  float64 `json:"perSec"`
	P50     float64 `json:"p50ms"` // start call sent → Completed seen by the client
	P90     float64 `json:"p90ms"`
	P99     float64 `json:"p99ms"`
	Max     float64 `json:"maxms"`
	// Per instance:
	Calls map[string]float64 `json:"callsByKind"` // HTTP calls by kind: start, raiseEvent, status, events
	// CallMS is the mean time of a call of each kind, sent → answer read
	// (events, a stream followed to its end, is left out).
	CallMS   map[string]float64 `json:"callMsByKind,omitempty"`
	AllCalls float64            `json:"calls"`
	ServerUS float64            `json:"serverCpuUs"` // the cairn serve process (API and engine)
	RedisUS  float64            `json:"redisCpuUs"`
	ClientUS float64            `json:"clientCpuUs"` // this process: the HTTP client (and the harness's INFO calls)
	// Retries are the raw client's requests sent again on a fresh
	// connection after a kept-alive one turned out closed (warm-up
	// included).
	Retries int64   `json:"clientRetries,omitempty"`
	Cmds    float64 `json:"commands"` // commands Redis executed, Lua included
	// ByCmd is Cmds by command name.
	ByCmd map[string]float64 `json:"commandsByName,omitempty"`
	// ServerReads and ServerWrites are cairn serve's read and write
	// system calls (/proc/<pid>/io syscr, syscw): sockets, HTTP and Redis
	// alike.
	ServerReads  float64 `json:"serverReadCalls,omitempty"`
	ServerWrites float64 `json:"serverWriteCalls,omitempty"`
	// ServerUSPerCall is the server's CPU divided by every HTTP call, the
	// engine's share included (it runs in the same process).
	ServerUSPerCall float64 `json:"serverCpuUsPerCall"`
	// PeakRSSMB is cairn serve's peak resident set (VmHWM) when the
	// repetition ended, warm-up and start included.
	PeakRSSMB float64 `json:"servePeakRssMB,omitempty"`
	// With gctrace: cairn serve's collections per 1,000 instances and
	// their CPU per instance, from its GODEBUG=gctrace=1 lines.
	GCPer1000 float64 `json:"gcPer1000,omitempty"`
	GCCPUUS   float64 `json:"gcCpuUs,omitempty"`
	Foreign   float64 `json:"foreignCores"`
	Quiet     float64 `json:"loadBefore"`
}

// FlowResult is every repetition of one variant.
type FlowResult struct {
	Variant    string       `json:"variant"`
	Durability string       `json:"durability"`
	Client     string       `json:"client"` // the bench's HTTP client: raw or net
	Conns      int          `json:"conns"`
	PollMS     float64      `json:"pollMs,omitempty"`
	Samples    []FlowSample `json:"samples"`
	Err        string       `json:"error,omitempty"`
}

var cairnBuild struct {
	once     sync.Once
	dir, bin string
	err      error
}

// cairnBin returns -cairn-bin, or the cairn command built once from the
// checkout the workflows live in.
func cairnBin(ctx context.Context, o options, logf func(string, ...any)) (string, error) {
	if o.cairnBin != "" {
		return o.cairnBin, nil
	}
	b := &cairnBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "cairn-bench-serve-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "cairn")
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, ".")
		cmd.Dir = filepath.Join(o.workflows, "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building cairn (go build in %s): %v\n%s", cmd.Dir, err, out)
			return
		}
		logf("built cairn in %.0fs", time.Since(t0).Seconds())
	})
	return b.bin, b.err
}

func removeCairnBuild() {
	if cairnBuild.dir != "" {
		os.RemoveAll(cairnBuild.dir)
	}
}

// serveChild is a `cairn serve` child process.
type serveChild struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	dir  string // its working directory
}

// startServe starts cairn serve on a free loopback port against the
// Redis at addr and waits until it is ready; its stderr goes to logPath.
func startServe(ctx context.Context, bin, addr, workflows, durability, logPath string, env []string, extra ...string) (*serveChild, error) {
	abs, err := filepath.Abs(workflows)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cairn-bench-serve-wd-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--redis", "redis://" + addr,
		"--workflows", abs, "--durability", durability, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir // nothing of it lands in the checkout
	if env != nil {
		cmd.Env = append(os.Environ(), env...) // the later of two settings of a name wins
	}
	return startChild(ctx, cmd, dir, logPath, "cairn serve")
}

// stop ends the child gracefully (SIGTERM), killing it after 15 s.
func (s *serveChild) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.dir)
}

var clockTicks = sync.OnceValue(func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && n > 0 {
			return n
		}
	}
	return 100 // USER_HZ on every Linux architecture the bench runs on
})

// pidCPU returns the CPU seconds (utime + stime) process pid used so far.
func pidCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (ut + st) / clockTicks(), nil
}

// The HTTP clients httpflow can drive cairn serve with.
const (
	clientRaw = "raw" // rawClient: hand-written HTTP/1.1 on keep-alive connections
	clientNet = "net" // Go's net/http client
)

var flowVariants = flag.String("httpflow-variants", strings.Join(append([]string{flowPoll, flowSSE}, floorVariants...), ","),
	"httpflow's variants, comma-separated")

var flowClientKind = flag.String("httpflow-client", clientRaw,
	"httpflow's HTTP client: raw (a lean keep-alive HTTP/1.1 client, so the client's CPU takes less from the cores cairn serve runs on) or net (net/http)")

// flowClient is the user's side: an HTTP client counting its calls.
type flowClient struct {
	kind    string     // clientRaw or clientNet
	raw     *rawClient // kind raw
	c       *http.Client
	tr      *http.Transport
	base    string
	variant string
	poll    time.Duration
	calls   map[string]*atomic.Int64
	nanos   map[string]*atomic.Int64 // time spent in calls of each kind
}

var flowKinds = []string{"start", "raiseEvent", "status", "events"}

// newFlowClient returns a client of the given kind (clientRaw or
// clientNet) for cairn serve at base.
func newFlowClient(kind, base, variant string, conns int, poll time.Duration) (*flowClient, error) {
	fc := &flowClient{kind: kind, base: base, variant: variant, poll: poll, calls: map[string]*atomic.Int64{}, nanos: map[string]*atomic.Int64{}}
	switch kind {
	case clientRaw:
		rc, err := newRawClient(base, time.Minute)
		if err != nil {
			return nil, err
		}
		fc.raw = rc
	case clientNet:
		fc.tr = &http.Transport{MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: 2 * conns, DisableCompression: true, IdleConnTimeout: time.Minute}
		fc.c = &http.Client{Transport: fc.tr, Timeout: time.Minute}
	default:
		return nil, fmt.Errorf("-httpflow-client %q: want %s or %s", kind, clientRaw, clientNet)
	}
	for _, k := range flowKinds {
		fc.calls[k], fc.nanos[k] = new(atomic.Int64), new(atomic.Int64)
	}
	return fc, nil
}

// close closes the client's idle connections.
func (fc *flowClient) close() {
	if fc.raw != nil {
		fc.raw.closeIdle()
	} else {
		fc.tr.CloseIdleConnections()
	}
}

func (fc *flowClient) snapshot() map[string]int64 {
	m := map[string]int64{}
	for k, v := range fc.calls {
		m[k] = v.Load()
	}
	return m
}

func (fc *flowClient) nanosSnapshot() map[string]int64 {
	m := map[string]int64{}
	for k, v := range fc.nanos {
		m[k] = v.Load()
	}
	return m
}

// do sends one call to the path a+b+p and returns its status code and
// body (read whole). With the raw client, rc is the connection the
// instance holds and the body is valid until its next call.
func (fc *flowClient) do(ctx context.Context, rc *rawConn, kind, method, a, b, p string, body []byte) (int, []byte, error) {
	fc.calls[kind].Add(1)
	began := time.Now()
	defer func() { fc.nanos[kind].Add(int64(time.Since(began))) }()
	if fc.raw != nil {
		return fc.raw.do(ctx, rc, method, a, b, p, body)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, fc.base+a+b+p, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := fc.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

const dfBase = "/runtime/webhooks/durabletask"

var raiseBody = []byte("true")

// run drives instance id through start, raise and the wait for
// Completed, and records when the client saw it completed.
func (fc *flowClient) run(ctx context.Context, t *tracker, i int, id string) error {
	var rc *rawConn
	var input []byte
	if fc.raw != nil {
		// One connection for the whole instance, as a wrk connection
		// carries its requests one after another.
		rc = fc.raw.get()
		defer fc.raw.put(rc)
		rc.scratch = strconv.AppendInt(append(rc.scratch[:0], `"user-`...), int64(i), 10)
		rc.scratch = append(rc.scratch, '"')
		input = rc.scratch
	} else {
		input = []byte(`"user-` + strconv.Itoa(i) + `"`)
	}
	code, b, err := fc.do(ctx, rc, "start", http.MethodPost, dfBase+"/orchestrators/ReserveTicket/", id, "", input)
	if err != nil {
		return err
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("start: %d %s", code, b)
	}
	code, b, err = fc.do(ctx, rc, "raiseEvent", http.MethodPost, dfBase+"/instances/", id, "/raiseEvent/BookingConfirmed", raiseBody)
	if err != nil {
		return err
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("raiseEvent: %d %s", code, b)
	}
	var status string
	switch {
	case fc.variant == flowSSE && fc.raw != nil:
		status, err = fc.followRaw(ctx, rc, id)
	case fc.variant == flowSSE:
		status, err = fc.follow(ctx, id)
	default:
		status, err = fc.pollStatus(ctx, rc, id)
	}
	if err != nil {
		return err
	}
	t.observe(i, time.Now(), status != "Completed")
	return nil
}

type flowStatus struct {
	RuntimeStatus string `json:"runtimeStatus"`
}

func finished(s string) bool { return s == "Completed" || s == "Failed" || s == "Terminated" }

// pollStatus waits one poll interval, then GETs the status, until the
// instance has finished (200; 202 means it still runs).
func (fc *flowClient) pollStatus(ctx context.Context, rc *rawConn, id string) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(fc.poll):
		}
		code, b, err := fc.do(ctx, rc, "status", http.MethodGet, dfBase+"/instances/", id, "", nil)
		if err != nil {
			return "", err
		}
		if code != http.StatusOK && code != http.StatusAccepted {
			return "", fmt.Errorf("GET status: %d %s", code, b)
		}
		var st flowStatus
		if err := json.Unmarshal(b, &st); err != nil {
			return "", fmt.Errorf("GET status: %w: %s", err, b)
		}
		if finished(st.RuntimeStatus) {
			return st.RuntimeStatus, nil
		}
	}
}

// follow reads the instance's status stream until it reports the end,
// then drains the stream (the server ends it), so the connection is
// reused.
func (fc *flowClient) follow(ctx context.Context, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fc.base+"/v1/instances/"+id+"/events", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/event-stream")
	fc.calls["events"].Add(1)
	resp, err := fc.c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("GET events: %d %s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		var st flowStatus
		if err := json.Unmarshal(data, &st); err != nil {
			return "", fmt.Errorf("GET events: %w: %s", err, data)
		}
		if finished(st.RuntimeStatus) {
			_, _ = io.Copy(io.Discard, resp.Body)
			return st.RuntimeStatus, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("GET events: the stream ended before the instance finished")
}

// followRaw is follow on the raw client's connection rc.
func (fc *flowClient) followRaw(ctx context.Context, rc *rawConn, id string) (status string, err error) {
	fc.calls["events"].Add(1)
	h, err := fc.raw.openStream(ctx, rc, "/v1/instances/", id, "/events")
	if err != nil {
		return "", err
	}
	// The drain's own failure only closes the connection: the status read
	// before it stands, as follow ignores its drain's error.
	defer func() { rc.endStream(h, err) }()
	if h.code != http.StatusOK {
		b, _ := rc.streamAll()
		return "", fmt.Errorf("GET events: %d %s", h.code, b)
	}
	for {
		line, err := rc.streamLine()
		if errors.Is(err, io.EOF) {
			return "", errors.New("GET events: the stream ended before the instance finished")
		}
		if err != nil {
			return "", fmt.Errorf("GET events: %w", err)
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		var st flowStatus
		if err := json.Unmarshal(data, &st); err != nil {
			return "", fmt.Errorf("GET events: %w: %s", err, data)
		}
		if finished(st.RuntimeStatus) {
			return st.RuntimeStatus, nil
		}
	}
}

// flowSpec is what one httpflow run varies: the client's wait, the Redis
// it runs against, and cairn serve's --durability and environment.
type flowSpec struct {
	variant    string
	h          *harness // the bench's connection to the Redis at addr
	addr       string
	durability string
	// env is added to cairn serve's environment (GOGC, GOMEMLIMIT);
	// gctrace adds GODEBUG=gctrace=1 and counts the child's collections.
	env     []string
	gctrace bool
	tag     string // in instance ids and log file names
	// floor, when set, is the floor server's variant (floor.go) to run
	// instead of cairn serve.
	floor string
}

// flowMeasure runs one repetition of a variant: a fresh Redis (FLUSHALL)
// and a fresh cairn serve, a warm-up, then n instances from o.flowConns
// goroutines, each driving one instance at a time.
func flowMeasure(ctx context.Context, o options, sp flowSpec, bin string, rep int) (FlowSample, error) {
	h := sp.h
	if err := h.flush(ctx); err != nil {
		return FlowSample{}, err
	}
	logPath := filepath.Join(o.resultsDir, "cairn-serve.log")
	env := sp.env
	if sp.gctrace {
		// A log of its own, so the collections of the measured window
		// can be read back from where it stood when the window opened.
		logPath = filepath.Join(o.resultsDir, "cairn-serve-gc.log")
		env = append(slices.Clip(env), "GODEBUG=gctrace=1")
	}
	var s *serveChild
	var err error
	if sp.floor != "" {
		s, err = startFloor(ctx, sp.floor, sp.addr, filepath.Join(o.resultsDir, "floor.log"))
	} else {
		s, err = startServe(ctx, bin, sp.addr, o.workflows, sp.durability, logPath, env)
	}
	if err != nil {
		return FlowSample{}, err
	}
	defer s.stop()
	pid := s.cmd.Process.Pid
	fc, err := newFlowClient(*flowClientKind, s.base, sp.variant, o.flowConns, o.flowPoll)
	if err != nil {
		return FlowSample{}, err
	}
	defer fc.close()
	load := func(t *tracker) error {
		return runLoad(ctx, t, 0, o.flowConns, func(ctx context.Context, i int, id string) error { return fc.run(ctx, t, i, id) })
	}
	quiet := waitQuiet(ctx, quietCores, quietWait)
	w := newTracker(fmt.Sprintf("hf%d-%s%s-w-", rep, sp.variant, sp.tag), warmup, targetDone)
	if err := load(w); err != nil {
		return FlowSample{}, fmt.Errorf("warm-up: %w", err)
	}
	time.Sleep(100 * time.Millisecond)

	t := newTracker(fmt.Sprintf("hf%d-%s%s-r-", rep, sp.variant, sp.tag), o.flowN, targetDone)
	calls0, nanos0 := fc.snapshot(), fc.nanosSnapshot()
	var logAt int64
	if fi, err := os.Stat(logPath); err == nil {
		logAt = fi.Size()
	}
	srv0, err := pidCPU(pid)
	if err != nil {
		return FlowSample{}, err
	}
	cli0 := processCPU()
	io0, _ := pidIO(pid)
	win, err := h.begin(ctx)
	if err != nil {
		return FlowSample{}, err
	}
	busy0, _ := machineBusy()
	started := time.Now()
	loadErr := load(t)
	d, err := win.end(ctx)
	if err != nil {
		return FlowSample{}, err
	}
	srv1, err := pidCPU(pid)
	if err != nil {
		return FlowSample{}, err
	}
	cli1 := processCPU()
	io1, _ := pidIO(pid)
	busy1, _ := machineBusy()
	wall := time.Since(started).Seconds()
	if loadErr != nil {
		return FlowSample{}, loadErr
	}
	if n := t.failed.Load(); n > 0 {
		return FlowSample{}, fmt.Errorf("%d of %d instances did not complete", n, t.n)
	}
	lat, span := t.latencies()
	n := float64(t.n)
	smp := FlowSample{Client: fc.kind, N: t.n, Seconds: span.Seconds(), PerSec: n / span.Seconds(),
		P50: percentile(lat, 50), P90: percentile(lat, 90), P99: percentile(lat, 99), Max: percentile(lat, 100),
		Calls:    map[string]float64{},
		ServerUS: (srv1 - srv0) * 1e6 / n, RedisUS: d.cpuSec * 1e6 / n, ClientUS: (cli1 - cli0) * 1e6 / n,
		Cmds:    float64(d.cmds) / n,
		Foreign: max(0, (busy1-busy0)-(srv1-srv0)-(cli1-cli0)-d.cpuSec) / wall, Quiet: quiet}
	smp.ServerReads, smp.ServerWrites = float64(io1.reads-io0.reads)/n, float64(io1.writes-io0.writes)/n
	smp.ByCmd = map[string]float64{}
	for k, v := range d.byCmd {
		smp.ByCmd[k] = float64(v) / n
	}
	if kb, err := peakRSSKB(pid); err == nil {
		smp.PeakRSSMB = float64(kb) / 1024
	}
	if sp.gctrace {
		gcs, cpuMS, err := gcTrace(logPath, logAt)
		if err != nil {
			return FlowSample{}, err
		}
		smp.GCPer1000 = float64(gcs) * 1000 / n
		smp.GCCPUUS = cpuMS * 1e3 / n
	}
	var all int64
	nanos1 := fc.nanosSnapshot()
	smp.CallMS = map[string]float64{}
	for k, v := range fc.snapshot() {
		if c := v - calls0[k]; c > 0 {
			smp.Calls[k] = float64(c) / n
			all += c
			if ns := nanos1[k] - nanos0[k]; ns > 0 {
				smp.CallMS[k] = float64(ns) / float64(c) / 1e6
			}
		}
	}
	smp.AllCalls = float64(all) / n
	if fc.raw != nil {
		smp.Retries = fc.raw.retries.Load()
	}
	if all > 0 {
		smp.ServerUSPerCall = (srv1 - srv0) * 1e6 / float64(all)
	}
	return smp, nil
}

// sysIO is a process's read and write system calls so far.
type sysIO struct{ reads, writes int64 }

// pidIO reads syscr and syscw from /proc/<pid>/io.
func pidIO(pid int) (sysIO, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return sysIO{}, err
	}
	var r sysIO
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "syscr":
			r.reads, _ = strconv.ParseInt(v, 10, 64)
		case "syscw":
			r.writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return r, nil
}

// peakRSSKB is the peak resident set of process pid so far (VmHWM), in kB.
func peakRSSKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// gcTrace counts the collections GODEBUG=gctrace=1 logged to path after
// offset, and their CPU in milliseconds: the sum of the "ms cpu" parts
// (stop-the-world sweep termination, assist, background and idle marking,
// mark termination).
func gcTrace(path string, offset int64) (int, float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, 0, err
	}
	var n int
	var ms float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		// gc 7 @0.3s 2%: 0.01+0.5+0.003 ms clock, 0.1+0.1/0.4/0.3+0.02 ms cpu, 4->4->1 MB, …
		_, rest, ok := strings.Cut(line, " ms clock, ")
		cpu, _, ok2 := strings.Cut(rest, " ms cpu")
		if !ok || !ok2 {
			continue
		}
		n++
		for _, part := range strings.FieldsFunc(cpu, func(r rune) bool { return r == '+' || r == '/' }) {
			v, _ := strconv.ParseFloat(part, 64)
			ms += v
		}
	}
	return n, ms, sc.Err()
}

// httpFlow runs every variant o.reps times, interleaved repetition by
// repetition like the other sections.
func httpFlow(ctx context.Context, o options, h *harness, addr string, rep *Report, logf func(string, ...any)) []FlowResult {
	var out []*FlowResult
	for _, v := range strings.Split(*flowVariants, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		r := &FlowResult{Variant: v, Client: *flowClientKind, Durability: o.flowDurability, Conns: o.flowConns}
		if v != flowPoll && v != flowSSE && !isFloor(v) {
			r.Err = fmt.Sprintf("unknown -httpflow-variants entry %q", v)
		}
		if v != flowSSE {
			r.PollMS = float64(o.flowPoll) / float64(time.Millisecond)
		}
		out = append(out, r)
	}
	bin, err := cairnBin(ctx, o, logf)
	for k := 0; k < o.reps && err == nil && ctx.Err() == nil; k++ {
		for _, r := range out {
			if r.Err != "" {
				continue
			}
			sp := flowSpec{variant: r.Variant, h: h, addr: addr, durability: o.flowDurability}
			if isFloor(r.Variant) {
				sp.floor = r.Variant
			}
			smp, err := flowMeasure(ctx, o, sp, bin, k)
			if err == nil && smp.Foreign > disturbedCores && ctx.Err() == nil {
				rep.Retried++
				logf("httpflow %s: other processes used %.2f cores; repeating", r.Variant, smp.Foreign)
				smp, err = flowMeasure(ctx, o, sp, bin, k)
			}
			if err != nil {
				r.Err = err.Error()
				logf("httpflow %s: %v", r.Variant, err)
				continue
			}
			r.Samples = append(r.Samples, smp)
			logf("httpflow %-4s burst %-6s %7.0f/s p50 %6.2f p99 %6.2f ms, %4.2f calls (%s; ms each: %s), serve %4.0f µs/instance %4.0f µs/call, Redis %4.0f µs, client %4.0f µs, %5.1f cmds (%s), serve syscalls %.1f read %.1f write, other load %.2f",
				r.Variant, count(smp.N), smp.PerSec, smp.P50, smp.P99, smp.AllCalls, topKeys(smp.Calls, 4, "%.2f"), topKeys(smp.CallMS, 4, "%.2f"),
				smp.ServerUS, smp.ServerUSPerCall, smp.RedisUS, smp.ClientUS, smp.Cmds, topKeys(smp.ByCmd, 6, "%.1f"),
				smp.ServerReads, smp.ServerWrites, smp.Foreign)
		}
	}
	if err == nil && ctx.Err() == nil {
		p, perr := flowProfile(ctx, o, h, addr, bin, logf)
		if perr != nil {
			rep.Notes = append(rep.Notes, "httpflow profile: "+perr.Error())
		}
		rep.HTTPFlowProfile = p
	}
	res := make([]FlowResult, len(out))
	for i, r := range out {
		if err != nil && r.Err == "" {
			r.Err = err.Error()
		}
		res[i] = *r
	}
	return res
}

func flowField(ss []FlowSample, f func(FlowSample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// flowPeer is go-workflows' ReserveTicket in process to compare with: the
// burst of the same size when the run had one, else its large burst.
func flowPeer(f finder, rep *Report, n int) (string, []Sample, []Sample) {
	mode := "burst " + count(n)
	if p := f.get("go-workflows", shapeBooking, mode, 1, 0, ""); p == nil || len(p.Samples) == 0 {
		mode = modesOf(rep)[1]
	}
	return mode, samples(f.get("go-workflows", shapeBooking, mode, 1, 0, "")), samples(f.get("cairn", shapeBooking, mode, 1, 0, "default"))
}

// flowVerdicts are issue 20's targets for the HTTP path.
func flowVerdicts(f finder, rep *Report) []verdict {
	var vs []verdict
	for _, r := range rep.HTTPFlow {
		if r.Variant != flowPoll || len(r.Samples) == 0 {
			continue
		}
		ss := r.Samples
		mode, peer, _ := flowPeer(f, rep, ss[0].N)
		ps := field(peer, perSec)
		met := "not measured"
		if peer != nil {
			met = map[bool]string{true: "✅ met", false: "❌ missed"}[median(flowField(ss, flowPerSec)) >= 3*median(ps)]
		}
		why := fmt.Sprintf("per instance the cairn serve process (API and engine) used %s µs of CPU for %s HTTP calls, Redis %s µs, the client %s µs; see ReserveTicket over HTTP",
			cell(flowField(ss, func(s FlowSample) float64 { return s.ServerUS })), cell(flowField(ss, func(s FlowSample) float64 { return s.AllCalls })),
			cell(flowField(ss, func(s FlowSample) float64 { return s.RedisUS })), cell(flowField(ss, func(s FlowSample) float64 { return s.ClientUS })))
		if peer == nil {
			mode = "not measured in this run"
		}
		vs = append(vs, verdict{fmt.Sprintf("ReserveTicket over HTTP (start, raise, poll; %d connections) ≥ 3× go-workflows in process (%s)", r.Conns, mode),
			cell(flowField(ss, flowPerSec)) + " instances/s (" + ratio(flowField(ss, flowPerSec), ps) + ")",
			cell(ps) + " instances/s", met, why})
		perCall := flowField(ss, func(s FlowSample) float64 { return s.ServerUSPerCall })
		cpuWhy := "the figure is the whole process's CPU (gin, the handlers, go-redis, and the engine and activity runtime running the instances) divided by the HTTP calls; see cairn serve's profile under ReserveTicket over HTTP"
		if fr := flowResult(rep, floorRedis); fr != nil {
			frCall := flowField(fr.Samples, func(s FlowSample) float64 { return s.ServerUSPerCall })
			fs := flowField(fr.Samples, flowPerSec)
			cpuWhy += fmt.Sprintf("; floor-redis, a server of the bench with gin, one Redis command per call and no engine, used %s µs per call in the same run: what the target allows is about what serving the calls with one store round trip each costs, before any workflow runs", cell(frCall))
			why += fmt.Sprintf("; floor-redis (gin, one Redis command per call, no engine) drove %s instances/s with the same client (%s go-workflows)", cell(fs), ratio(fs, ps))
			vs[len(vs)-1].why = why
		}
		vs = append(vs, verdict{"cairn serve CPU per HTTP call ≤ 65 µs (half of the 130 µs measured when issue 20 was filed)",
			cell(perCall) + " µs per call, " + cell(flowField(ss, func(s FlowSample) float64 { return s.ServerUS })) + " µs per instance", "—",
			map[bool]string{true: "✅ met", false: "❌ missed"}[median(perCall) <= 65], cpuWhy})
	}
	return vs
}

// flowResult is the httpflow result of variant, nil when it has no samples.
func flowResult(rep *Report, variant string) *FlowResult {
	for i := range rep.HTTPFlow {
		if r := &rep.HTTPFlow[i]; r.Variant == variant && len(r.Samples) > 0 {
			return r
		}
	}
	return nil
}

func flowPerSec(s FlowSample) float64 { return s.PerSec }

func renderHTTPFlow(b *strings.Builder, f finder, rep *Report) {
	if len(rep.HTTPFlow) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## ReserveTicket over HTTP (cairn serve in a child process)\n\n")
	w("The cairn command, built from the checkout, runs as `cairn serve --durability %s` (API and engine in one process, default options) in a child process against the bench's redis-server; ", rep.HTTPFlow[0].Durability)
	w("an independent Go client in the bench process (%s) drives ReserveTicket over the Durable Functions API as a user would: ", flowClients(rep.HTTPFlow))
	w("`POST /runtime/webhooks/durabletask/orchestrators/ReserveTicket/{id}`, `POST …/instances/{id}/raiseEvent/BookingConfirmed`, then either ")
	poll := 0.0
	for _, r := range rep.HTTPFlow {
		if r.PollMS > 0 {
			poll = r.PollMS
		}
	}
	w("**poll**: wait %g ms, `GET …/instances/{id}`, again until it answers Completed; or **sse**: `GET /v1/instances/{id}/events` read until the status stream says Completed. ", poll)
	w("%d client goroutines over keep-alive connections, each driving one instance at a time from the start to Completed; a fresh Redis (`FLUSHALL`) and a fresh cairn serve per repetition, %d warm-up instances first. ", rep.HTTPFlow[0].Conns, warmup)
	w("Latency is from just before the start call to the client seeing Completed. Server CPU is the child's utime + stime (`/proc/<pid>/stat`), the engine's included; client CPU is the bench process's.\n\n")
	w("| variant | instances | instances/s | p50 ms | p99 ms | HTTP calls per instance | ms per call (median run) | serve CPU µs/instance | serve CPU µs/call | Redis CPU µs/instance | client CPU µs/instance | Redis commands/instance |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.HTTPFlow {
		ss := r.Samples
		if r.Err != "" {
			w("| %s | ⚠ %s |||||||||||\n", r.Variant, r.Err)
		}
		if len(ss) == 0 {
			continue
		}
		m := ss[len(ss)/2]
		g := func(get func(FlowSample) float64) string { return cell(flowField(ss, get)) }
		w("| %s (%s client)%s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n", r.Variant, flowClientOf(r), flowMark(ss), count(m.N),
			g(flowPerSec), g(func(s FlowSample) float64 { return s.P50 }), g(func(s FlowSample) float64 { return s.P99 }),
			g(func(s FlowSample) float64 { return s.AllCalls }), topKeys(m.Calls, 4, "%.2f"), topKeys(m.CallMS, 4, "%.2f"),
			g(func(s FlowSample) float64 { return s.ServerUS }), g(func(s FlowSample) float64 { return s.ServerUSPerCall }),
			g(func(s FlowSample) float64 { return s.RedisUS }), g(func(s FlowSample) float64 { return s.ClientUS }),
			g(func(s FlowSample) float64 { return s.Cmds }))
	}
	w("\n")
	for _, r := range rep.HTTPFlow {
		if len(r.Samples) == 0 || isFloor(r.Variant) {
			continue
		}
		mode, peer, inproc := flowPeer(f, rep, r.Samples[0].N)
		ss := flowField(r.Samples, flowPerSec)
		switch {
		case peer != nil:
			w("- %s%s: %s instances/s over HTTP ÷ go-workflows in process (ReserveTicket, %s%s, same run: %s instances/s) = **%s**", r.Variant, flowMark(r.Samples), cell(ss), mode, mark(peer), cell(field(peer, perSec)), ratio(ss, field(peer, perSec)))
		default:
			w("- %s: %s instances/s over HTTP (go-workflows was not measured in this run)", r.Variant, cell(ss))
		}
		if inproc != nil {
			w("; ÷ cairn in process (%s, %s instances/s) = %s", mode, cell(field(inproc, perSec)), ratio(ss, field(inproc, perSec)))
		}
		w(".\n")
	}
	renderFloor(w, rep.HTTPFlow)
	w("\nThe client holds %d instances in flight, so throughput is at most %d ÷ the latency: ", rep.HTTPFlow[0].Conns, rep.HTTPFlow[0].Conns)
	w("the poll variant's latency includes up to one poll interval after the instance completed. Server CPU per call divides the whole process's CPU, the engine's transitions included, by the HTTP calls.\n\n")
	if p := rep.HTTPFlowProfile; p != nil {
		w("### cairn serve's profile\n\n%s. Files: `%s` (open with `go tool pprof`).\n\n", p.Run, strings.Join(p.Files, "`, `"))
		for _, x := range []struct{ title, body string }{
			{"CPU, flat", p.CPU}, {"CPU, cumulative", p.CPUCum}, {"Allocations while loaded (`-sample_index=alloc_space`)", p.Allocs},
		} {
			if x.body != "" {
				w("#### %s\n\n```\n%s\n```\n\n", x.title, x.body)
			}
		}
	}
}

// flowClientOf is the client a result's samples were measured with.
func flowClientOf(r FlowResult) string {
	if len(r.Samples) > 0 && r.Samples[0].Client != "" {
		return r.Samples[0].Client
	}
	if r.Client != "" {
		return r.Client
	}
	return clientNet // results from before the raw client
}

// flowClients says in words which clients the results used.
func flowClients(rs []FlowResult) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		k := flowClientOf(r)
		if seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case clientRaw:
			out = append(out, "the raw client: hand-written HTTP/1.1 requests on keep-alive TCP connections, one per client goroutine, responses parsed in place, like wrk; `-httpflow-client net` measures with net/http instead")
		default:
			out = append(out, "Go's net/http client")
		}
	}
	return strings.Join(out, "; ")
}

func flowMark(ss []FlowSample) string {
	for _, s := range ss {
		if s.Foreign > disturbedCores {
			return " †"
		}
	}
	return ""
}

// FlowProfile is the top of cairn serve's own profiles (net/http/pprof
// behind --pprof) under the poll variant's load.
type FlowProfile struct {
	Run    string   `json:"run"`
	CPU    string   `json:"cpu"`    // flat
	CPUCum string   `json:"cpuCum"` // cumulative
	Allocs string   `json:"allocs"` // alloc_space during the load
	Files  []string `json:"files"`
}

// freeLoopbackPort returns a port nothing listens on right now.
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// fetchTo GETs url into path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// flowProfile runs the poll variant once more, in a run of its own so
// profiling touches no other figure, against a cairn serve with --pprof,
// and takes its CPU profile and the allocations made while loaded.
func flowProfile(ctx context.Context, o options, h *harness, addr, bin string, logf func(string, ...any)) (*FlowProfile, error) {
	if err := h.flush(ctx); err != nil {
		return nil, err
	}
	pp, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	s, err := startServe(ctx, bin, addr, o.workflows, o.flowDurability, filepath.Join(o.resultsDir, "cairn-serve.log"), nil, "--pprof", pp)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	fc, err := newFlowClient(*flowClientKind, s.base, flowPoll, o.flowConns, o.flowPoll)
	if err != nil {
		return nil, err
	}
	defer fc.close()
	load := func(t *tracker) error {
		return runLoad(ctx, t, 0, o.flowConns, func(ctx context.Context, i int, id string) error { return fc.run(ctx, t, i, id) })
	}
	if err := load(newTracker("hfp-w-", warmup, targetDone)); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	base := "http://" + pp + "/debug/pprof/"
	cpuPath := filepath.Join(o.resultsDir, "cpu-serve.pprof")
	allocBase := filepath.Join(o.resultsDir, "allocs-serve-before.pprof")
	allocPath := filepath.Join(o.resultsDir, "allocs-serve.pprof")
	if err := fetchTo(ctx, base+"allocs", allocBase); err != nil {
		return nil, err
	}
	secs := 5
	if o.quick {
		secs = 3
	}
	done := make(chan error, 1)
	go func() { done <- fetchTo(ctx, fmt.Sprintf("%sprofile?seconds=%d", base, secs), cpuPath) }()
	// Batches back to back until the profile is written: one burst is
	// shorter than a profile worth reading.
	t0, instances := time.Now(), 0
	var perr error
	for k, profiling := 0, true; profiling; k++ {
		if err := load(newTracker(fmt.Sprintf("hfp%d-", k), o.flowN, targetDone)); err != nil {
			return nil, err
		}
		instances += o.flowN
		select {
		case perr = <-done:
			profiling = false
		default:
		}
	}
	el := time.Since(t0)
	if perr != nil {
		return nil, perr
	}
	if err := fetchTo(ctx, base+"allocs", allocPath); err != nil {
		return nil, err
	}
	rate := float64(instances) / el.Seconds()
	logf("profiled cairn serve under the poll variant: %.0f instances/s", rate)
	return &FlowProfile{
		Run:    fmt.Sprintf("cairn serve under the poll variant (%d client goroutines), %d s CPU profile, %.0f instances/s while profiled", o.flowConns, secs, rate),
		CPU:    pprofTop(ctx, cpuPath),
		CPUCum: pprofTop(ctx, "-cum", cpuPath),
		Allocs: pprofTop(ctx, "-sample_index=alloc_space", "-base="+allocBase, allocPath),
		Files:  []string{cpuPath, allocPath},
	}, nil
}
