package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/history"
	wfredis "github.com/cschleiden/go-workflows/backend/redis"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/core"
	"github.com/cschleiden/go-workflows/diag"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
	"github.com/redis/go-redis/v9"
)

// The peer: github.com/cschleiden/go-workflows v1.2.0 with its Redis
// backend, running the same shapes as cairn.

// CalculateDiscount is ReserveTicket's activity: 10 + len(user) % 3 * 5.
func CalculateDiscount(_ context.Context, user string) (int, error) {
	return 10 + len(user)%3*5, nil
}

// Echo is the one-activity shape's activity.
func Echo(_ context.Context, in string) (string, error) { return in, nil }

type offer struct {
	Discount        int    `json:"discount"`
	DiscountTimeout int    `json:"discountTimeout"`
	BookingURL      string `json:"bookingUrl"`
}

// Booking is ReserveTicket for go-workflows: activity → status step → wait
// for the BookingConfirmed signal or a timer → status step → bool. The
// library has no custom status, so a status step is a SideEffect whose
// value is recorded in the instance's history (durable and readable by a
// client, as a custom status is).
func Booking(ctx workflow.Context, user string, timeoutSec int) (bool, error) {
	discount, err := workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, CalculateDiscount, user).Get(ctx)
	if err != nil {
		return false, err
	}
	if _, err := workflow.SideEffect(ctx, func(workflow.Context) offer {
		return offer{Discount: discount, DiscountTimeout: 60, BookingURL: "https://example.com/book/" + user}
	}).Get(ctx); err != nil {
		return false, err
	}
	tctx, cancel := workflow.WithCancel(ctx)
	timer := workflow.ScheduleTimer(tctx, time.Duration(timeoutSec)*time.Second)
	confirmed := false
	workflow.Select(ctx,
		workflow.Receive(workflow.NewSignalChannel[bool](ctx, "BookingConfirmed"), func(_ workflow.Context, v bool, _ bool) {
			confirmed = v
			cancel()
		}),
		workflow.Await(timer, func(workflow.Context, workflow.Future[any]) {}),
	)
	msg := "The booking was not confirmed on time. Please try again."
	if confirmed {
		msg = "Thank you for confirming your booking."
	}
	if _, err := workflow.SideEffect(ctx, func(workflow.Context) string { return msg }).Get(ctx); err != nil {
		return false, err
	}
	return confirmed, nil
}

// OneActivity calls Echo and returns its result.
func OneActivity(ctx workflow.Context, in string) (string, error) {
	return workflow.ExecuteActivity[string](ctx, workflow.DefaultActivityOptions, Echo, in).Get(ctx)
}

// peerConfig: tuned (16 workflow + 8 activity pollers, a larger executor
// cache) or the library's defaults.
type peerConfig struct {
	Tuned bool
}

func (c peerConfig) workerOptions() *worker.Options {
	o := worker.DefaultOptions
	if c.Tuned {
		o.WorkflowPollers = 16
		o.ActivityPollers = 8
		o.WorkflowExecutorCacheSize = 16384
	}
	return &o
}

// peerBackend wraps the Redis backend to see, right after each workflow
// task is committed, which instances finished or started to wait.
type peerBackend struct {
	backend.Backend
	cur *atomic.Pointer[tracker]
}

func (b *peerBackend) CompleteWorkflowTask(ctx context.Context, task *backend.WorkflowTask, state core.WorkflowInstanceState,
	executed, activities, timers []*history.Event, wfEvents []*history.WorkflowEvent) error {
	err := b.Backend.CompleteWorkflowTask(ctx, task, state, executed, activities, timers, wfEvents)
	if err != nil {
		return err
	}
	t := b.cur.Load()
	if t == nil {
		return nil
	}
	i := t.index(task.WorkflowInstance.InstanceID)
	if i < 0 {
		return nil
	}
	now := time.Now()
	if state == core.WorkflowInstanceStateFinished {
		failed := t.want == targetWaiting
		for _, e := range executed {
			if a, ok := e.Attributes.(*history.ExecutionCompletedAttributes); ok && a.Error != nil {
				failed = true
			}
		}
		t.observe(i, now, failed)
		return nil
	}
	if t.want == targetWaiting {
		for _, e := range executed {
			if e.Type == history.EventType_TimerScheduled {
				t.observe(i, now, false)
			}
		}
	}
	return nil
}

type peerSession struct {
	client *redis.Client
	cnt    *counter
	be     *peerBackend
	diag   diag.Backend
	c      *client.Client
	cancel context.CancelFunc
	w      *worker.Worker
	cur    atomic.Pointer[tracker]
	seq    atomic.Int64
	mu     sync.Mutex
	insts  map[string]*workflow.Instance
}

func startPeer(ctx context.Context, addr string, h *harness, cfg peerConfig) (*peerSession, error) {
	if err := h.flush(ctx); err != nil {
		return nil, err
	}
	s := &peerSession{cnt: newCounter(), insts: map[string]*workflow.Instance{}}
	s.client = newStoreClient(addr, s.cnt)
	quiet := slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError}))
	rb, err := wfredis.NewRedisBackend(s.client, wfredis.WithBackendOptions(backend.WithLogger(quiet)))
	if err != nil {
		return nil, err
	}
	d, ok := any(rb).(diag.Backend)
	if !ok {
		return nil, errors.New("go-workflows' Redis backend does not implement diag.Backend")
	}
	s.diag = d
	s.be = &peerBackend{Backend: rb, cur: &s.cur}
	s.w = worker.New(s.be, cfg.workerOptions())
	for _, wf := range []workflow.Workflow{Booking, OneActivity} {
		if err := s.w.RegisterWorkflow(wf); err != nil {
			return nil, err
		}
	}
	for _, a := range []workflow.Activity{CalculateDiscount, Echo} {
		if err := s.w.RegisterActivity(a); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.w.Start(wctx); err != nil {
		cancel()
		return nil, err
	}
	s.c = client.New(s.be)
	return s, nil
}

func (s *peerSession) stop() {
	s.cancel()
	s.client.Close() // cuts the pollers' blocking reads short
	done := make(chan struct{})
	go func() { _ = s.w.WaitForCompletion(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
}

func (s *peerSession) starter(shape string) starter {
	return func(ctx context.Context, i int, id string) error {
		opts := client.WorkflowInstanceOptions{InstanceID: id}
		var inst *workflow.Instance
		var err error
		switch shape {
		case shapeOne:
			inst, err = s.c.CreateWorkflowInstance(ctx, opts, OneActivity, "user1")
		case shapeBooking, shapeWait:
			inst, err = s.c.CreateWorkflowInstance(ctx, opts, Booking, "user1", 60)
		case shapeIdle:
			inst, err = s.c.CreateWorkflowInstance(ctx, opts, Booking, "user1", 3600)
		default:
			return fmt.Errorf("the peer has no %s shape", shape)
		}
		if err != nil {
			return err
		}
		if shape == shapeIdle {
			s.mu.Lock()
			s.insts[id] = inst
			s.mu.Unlock()
		}
		if shape == shapeBooking {
			return s.c.SignalWorkflow(ctx, id, "BookingConfirmed", true)
		}
		return nil
	}
}

func (s *peerSession) track(t *tracker) { s.cur.Store(t) }
func (s *peerSession) resetCounts() error {
	s.cnt.reset()
	return nil
}
func (s *peerSession) usage() (counts, float64, error) {
	return s.cnt.snapshot(), processCPU(), nil
}
func (s *peerSession) newRunID(tag string) string {
	return fmt.Sprintf("%s%d-", tag, s.seq.Add(1))
}

// statusHandler is the peer's GET status: go-workflows ships no status
// API besides its diagnostics UI (which adds the whole history), so this is
// the minimal net/http handler over its backend's GetWorkflowInstance:
// GET /instances/{id}/{executionID}.
func (s *peerSession) statusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/instances/")
		id, exec, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			http.NotFound(w, r)
			return
		}
		ref, err := s.diag.GetWorkflowInstance(r.Context(), core.NewWorkflowInstance(id, exec))
		if err != nil || ref == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ref)
	})
}

// statusPaths are the GET status paths of the idle instances started.
func (s *peerSession) statusPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, in := range s.insts {
		out = append(out, "/instances/"+id+"/"+in.ExecutionID)
	}
	return out
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
