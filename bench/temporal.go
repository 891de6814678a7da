package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
)

// The second peer: Temporal, the engine most users would pick instead.
// The server is temporalserver/ (go.temporal.io/server v1.32.1 set up as
// `temporal server start-dev` is: every service in one process, SQLite in
// memory) in a child process, so its CPU is measured apart, as Redis' is;
// the client and the worker (go.temporal.io/sdk v1.51.0) run in this
// process. A fresh server per repetition, as go-workflows gets a fresh
// Redis.

var (
	temporalBin = flag.String("temporal-server", "", "a temporalserver binary for the Temporal peer (default: go build ./temporalserver, its own module, once per bench run)")
	temporalSrc = flag.String("temporal-server-src", "temporalserver", "the temporalserver module to build when -temporal-server is not given")
)

const temporalQueue = "bench"

// TemporalBooking is ReserveTicket for Temporal: activity → status →
// the BookingConfirmed signal or a timer → status → bool. The custom
// status is the workflow's memo (UpsertMemo), not a query handler: a memo
// is recorded in the history and served by DescribeWorkflowExecution from
// the server's own state, durable and readable with no worker running, as
// cairn's custom status is; a query would be answered by a worker
// replaying the instance, a round trip to the worker on every read. The
// upsert travels with the workflow task's other commands, so it adds no
// round trip.
func TemporalBooking(ctx workflow.Context, user string, timeoutSec int) (bool, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// The retry policy of reserve-ticket.yaml's CalculateDiscount.
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second,
			BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
	var discount int
	if err := workflow.ExecuteActivity(ctx, CalculateDiscount, user).Get(ctx, &discount); err != nil {
		return false, err
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{"status": offer{Discount: discount, DiscountTimeout: 60,
		BookingURL: "https://example.com/book/" + user}}); err != nil {
		return false, err
	}
	tctx, cancel := workflow.WithCancel(ctx)
	timer := workflow.NewTimer(tctx, time.Duration(timeoutSec)*time.Second)
	confirmed := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, "BookingConfirmed"), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &confirmed)
		cancel()
	})
	sel.AddFuture(timer, func(workflow.Future) {})
	sel.Select(ctx)
	msg := "The booking was not confirmed on time. Please try again."
	if confirmed {
		msg = "Thank you for confirming your booking."
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{"status": map[string]string{"message": msg}}); err != nil {
		return false, err
	}
	return confirmed, nil
}

// TemporalOneActivity calls Echo and returns its result.
func TemporalOneActivity(ctx workflow.Context, in string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, Echo, in).Get(ctx, &out)
	return out, err
}

// temporalServer is the server child: it prints "ready HOST:PORT", answers
// "cpu" with its CPU seconds and stops when stdin closes.
type temporalServer struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
	mu   sync.Mutex
}

var temporalBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// temporalServerBin returns the server binary: -temporal-server, or
// temporalserver/ built once into a temporary directory (its module is
// large: the first build takes minutes, later ones come from the build
// cache).
func temporalServerBin(ctx context.Context, logf func(string, ...any)) (string, error) {
	if *temporalBin != "" {
		return *temporalBin, nil
	}
	b := &temporalBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "cairn-bench-temporal-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "temporalserver")
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, ".")
		cmd.Dir = *temporalSrc
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building the Temporal server (go build in %s): %v\n%s", *temporalSrc, err, out)
			return
		}
		logf("built the Temporal server in %.0fs", time.Since(t0).Seconds())
	})
	return b.bin, b.err
}

// removeTemporalBuild deletes the binary temporalServerBin built.
func removeTemporalBuild() {
	if temporalBuild.dir != "" {
		os.RemoveAll(temporalBuild.dir)
	}
}

// startTemporalServer starts the server child; its log (errors only,
// some expected under overload: persistence deadlines, a frontend not yet
// healthy when the client first dials) goes to logPath.
func startTemporalServer(bin, logPath string) (*temporalServer, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("the Temporal server's log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin)
	cmd.Stderr = logf
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
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &temporalServer{cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := s.out.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		return nil, fmt.Errorf("the Temporal server did not start (see %s): %q %v", logPath, line, err)
	}
	s.addr = addr
	return s, nil
}

// cpu is the server process's CPU seconds so far.
func (s *temporalServer) cpu() (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.in, "cpu\n"); err != nil {
		return 0, fmt.Errorf("asking the Temporal server its CPU: %w", err)
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the Temporal server's CPU: %w", err)
	}
	var v struct {
		CPU float64 `json:"cpu"`
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		return 0, fmt.Errorf("the Temporal server's CPU %q: %w", line, err)
	}
	return v.CPU, nil
}

func (s *temporalServer) stop() {
	s.in.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// temporalSession is the Temporal client and worker in this process,
// against one server child.
type temporalSession struct {
	srv    *temporalServer
	c      client.Client
	w      worker.Worker
	cnt    *counter
	cur    atomic.Pointer[tracker]
	seq    atomic.Int64
	tokens sync.Map // workflow task token → workflow id, from poll to response
	marks  []float64
}

func startTemporal(bin, logPath string) (*temporalSession, error) {
	srv, err := startTemporalServer(bin, logPath)
	if err != nil {
		return nil, err
	}
	s := &temporalSession{srv: srv, cnt: newCounter()}
	quiet := slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError}))
	s.c, err = client.Dial(client.Options{HostPort: srv.addr, Namespace: "default", Logger: sdklog.NewStructuredLogger(quiet),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(s.intercept)}}})
	if err != nil {
		srv.stop()
		return nil, fmt.Errorf("dialling the Temporal server at %s: %w", srv.addr, err)
	}
	// Tuned as go-workflows is (16 workflow + 8 activity pollers); the
	// sticky cache's default (10,000) holds every instance of a run.
	s.w = worker.New(s.c, temporalQueue, worker.Options{MaxConcurrentWorkflowTaskPollers: 16, MaxConcurrentActivityTaskPollers: 8})
	s.w.RegisterWorkflowWithOptions(TemporalBooking, workflow.RegisterOptions{Name: "Booking"})
	s.w.RegisterWorkflowWithOptions(TemporalOneActivity, workflow.RegisterOptions{Name: "OneActivity"})
	s.w.RegisterActivity(CalculateDiscount)
	s.w.RegisterActivity(Echo)
	if err := s.w.Start(); err != nil {
		s.c.Close()
		srv.stop()
		return nil, fmt.Errorf("starting the Temporal worker: %w", err)
	}
	return s, nil
}

func (s *temporalSession) stop() {
	s.w.Stop()
	s.c.Close()
	s.srv.stop()
}

// intercept counts every gRPC call of this process (client and worker) as
// a round trip, and sees, right after the server accepted a workflow
// task's completion, which instances it finished or left waiting: the
// same moment go-workflows' CompleteWorkflowTask hook takes.
func (s *temporalSession) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	s.cnt.trips.Add(1)
	s.cnt.cmds.Add(1)
	s.cnt.note(path.Base(method))
	if err != nil {
		return err
	}
	switch r := reply.(type) {
	case *workflowservice.PollWorkflowTaskQueueResponse:
		s.noteTask(r)
	case *workflowservice.RespondWorkflowTaskCompletedResponse:
		s.noteTask(r.GetWorkflowTask())
		q, ok := req.(*workflowservice.RespondWorkflowTaskCompletedRequest)
		if !ok {
			return nil
		}
		v, ok := s.tokens.LoadAndDelete(string(q.GetTaskToken()))
		if !ok {
			return nil
		}
		t := s.cur.Load()
		if t == nil {
			return nil
		}
		i := t.index(v.(string))
		if i < 0 {
			return nil
		}
		now := time.Now()
		for _, c := range q.GetCommands() {
			switch c.GetCommandType() {
			case enumspb.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
				t.observe(i, now, t.want == targetWaiting)
			case enumspb.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION, enumspb.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION:
				t.observe(i, now, true)
			case enumspb.COMMAND_TYPE_START_TIMER:
				if t.want == targetWaiting {
					t.observe(i, now, false)
				}
			}
		}
	case *workflowservice.RespondWorkflowTaskFailedResponse:
		if q, ok := req.(*workflowservice.RespondWorkflowTaskFailedRequest); ok {
			s.tokens.Delete(string(q.GetTaskToken()))
		}
	}
	return nil
}

func (s *temporalSession) noteTask(r *workflowservice.PollWorkflowTaskQueueResponse) {
	if r == nil || len(r.GetTaskToken()) == 0 {
		return
	}
	s.tokens.Store(string(r.GetTaskToken()), r.GetWorkflowExecution().GetWorkflowId())
}

func (s *temporalSession) starter(shape string) starter {
	return func(ctx context.Context, i int, id string) error {
		opts := client.StartWorkflowOptions{ID: id, TaskQueue: temporalQueue}
		var err error
		switch shape {
		case shapeOne:
			_, err = s.c.ExecuteWorkflow(ctx, opts, "OneActivity", "user1")
		case shapeBooking, shapeWait:
			_, err = s.c.ExecuteWorkflow(ctx, opts, "Booking", "user1", 60)
		case shapeIdle:
			_, err = s.c.ExecuteWorkflow(ctx, opts, "Booking", "user1", 3600)
		default:
			return fmt.Errorf("the Temporal peer has no %s shape", shape)
		}
		if err != nil {
			return err
		}
		if shape == shapeBooking {
			return s.c.SignalWorkflow(ctx, id, "", "BookingConfirmed", true)
		}
		return nil
	}
}

func (s *temporalSession) track(t *tracker) { s.cur.Store(t) }

func (s *temporalSession) resetCounts() error {
	s.cnt.reset()
	s.marks = s.marks[:0]
	return nil
}

// usage is this process's CPU plus the server's, so measure's share of
// the machine taken by other processes stays right; each call notes the
// server's share, which temporalMeasure takes back out.
func (s *temporalSession) usage() (counts, float64, error) {
	srv, err := s.srv.cpu()
	if err != nil {
		return counts{}, 0, err
	}
	s.marks = append(s.marks, srv)
	return s.cnt.snapshot(), processCPU() + srv, nil
}

func (s *temporalSession) newRunID(tag string) string {
	return fmt.Sprintf("%s%d-", tag, s.seq.Add(1))
}

// temporalMeasure runs one repetition on a fresh server: measure's figures,
// with ServerUS the server process's CPU per instance and ClientUS this
// process's alone (client, worker, load generator).
// The server's log is appended to logDir/temporal-server.log.
func temporalMeasure(ctx context.Context, h *harness, r runSpec, timeout time.Duration, logDir string, logf func(string, ...any)) (Sample, error) {
	bin, err := temporalServerBin(ctx, logf)
	if err != nil {
		return Sample{}, err
	}
	s, err := startTemporal(bin, filepath.Join(logDir, "temporal-server.log"))
	if err != nil {
		return Sample{}, err
	}
	defer s.stop()
	r.Mem = false // Redis memory says nothing about Temporal
	smp, err := measure(ctx, s, h, r, timeout)
	if err != nil {
		return smp, err
	}
	if len(s.marks) != 2 {
		return smp, errors.New("the Temporal server's CPU was not read at the start and the end of the measured window")
	}
	smp.ServerUS = (s.marks[1] - s.marks[0]) * 1e6 / float64(r.N)
	smp.ClientUS -= smp.ServerUS
	return smp, nil
}

func scpu(s Sample) float64 { return s.ServerUS }

// renderTemporal is the report's Temporal section: its figures per shape
// and run, next to cairn's and go-workflows' from the same run.
func renderTemporal(b *strings.Builder, f finder, small, big, paced string) {
	have := false
	for _, shape := range []string{shapeBooking, shapeOne} {
		for _, mode := range []string{small, big, paced} {
			have = have || f.get("temporal", shape, mode, 1, 0, "") != nil
		}
	}
	if !have {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Temporal, as its dev server runs\n\n")
	w("go.temporal.io/server v1.32.1 set up as `temporal server start-dev` sets it up (`bench/temporalserver`, its own module): frontend, history, matching and worker services in one child process, ")
	w("SQLite **in memory** (nothing is written to disk, nothing survives the process), one history shard, the dev server's dynamic config. ")
	w("That is a development set-up, not how Temporal is deployed in production (Cassandra, PostgreSQL or MySQL, many shards, services apart), so read these rows as \"Temporal as a developer first runs it\", on the same two cores as everything else. ")
	w("The client and the worker (go.temporal.io/sdk v1.51.0, 16 workflow + 8 activity pollers as go-workflows gets) run in the bench process; a fresh server per repetition. ")
	w("ReserveTicket is the same shape: the CalculateDiscount activity (reserve-ticket.yaml's retry policy), the custom status, the BookingConfirmed signal (sent right after the start) or a 60 s timer, the closing status, bool. ")
	w("The custom status is the workflow's **memo** (`UpsertMemo`), not a query handler: a memo is recorded in the history and served by `DescribeWorkflowExecution` from the server's own state, durable and readable with no worker running, as cairn's custom status is, ")
	w("while a query is answered by a worker replaying the instance; the upsert travels with the workflow task's other commands, so it costs no round trip. ")
	w("An instance is seen completed right after the server accepted the workflow task completion that finished it (a gRPC interceptor on the worker's connection; go-workflows' moment). ")
	w("Round trips are the bench process's gRPC calls (client and worker, long polls included); server CPU is the child's own rusage; client CPU is the bench process (worker, client, load generator).\n\n")
	w("| shape | run | Temporal instances/s | p50 ms | p99 ms | gRPC calls | client CPU µs | server CPU µs | cairn ÷ Temporal instances/s | Temporal p50 ÷ cairn p50 | go-workflows ÷ Temporal instances/s |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, shape := range []string{shapeBooking, shapeOne} {
		for _, mode := range []string{small, big, paced} {
			r := f.get("temporal", shape, mode, 1, 0, "")
			if r == nil {
				continue
			}
			t := r.Samples
			c := samples(f.get("cairn", shape, mode, 1, 0, "default"))
			p := samples(f.get("go-workflows", shape, mode, 1, 0, ""))
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", shape, mode+mark(t),
				cell(field(t, perSec)), cell(field(t, p50)), cell(field(t, p99)), cell(field(t, trips)),
				cell(field(t, ccpu)), cell(field(t, scpu)),
				ratio(field(c, perSec), field(t, perSec)), ratio(field(t, p50), field(c, p50)), ratio(field(p, perSec), field(t, perSec)))
			if r.Err != "" {
				w("| ⚠ %s ||||||||||\n", r.Err)
			}
		}
	}
	w("\nCPU per instance, whole system: cairn is Redis CPU + its process's, go-workflows the same, Temporal the server's + the bench process's (see Cost per instance).\n\n")
}

// temporalCostRow is Temporal's row in the cost table: gRPC calls for
// round trips, no Redis commands, the server's CPU in the Redis column's
// place and the client's in the engine's.
func temporalCostRow(shape, mode string, t []Sample) string {
	return fmt.Sprintf("| %s | %s | Temporal (dev server; gRPC calls; server CPU in the Redis column) | %s | — | — | %s | %s |\n",
		shape, mode, cell(field(t, trips)), cell(field(t, scpu)), cell(field(t, ccpu)))
}
