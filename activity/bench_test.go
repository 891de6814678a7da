package activity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// memTasks is a TaskStore that hands out the tasks sent to it and counts
// their outcomes, so that a benchmark measures the runtime's own work per
// task (goroutines, contexts, logging, result checks) without a store's.
type memTasks struct {
	tasks chan interpreter.Task
	done  sync.WaitGroup
	fails chan interpreter.ErrorInfo
}

func (m *memTasks) ReadTaskBatch(ctx context.Context, _, _ string, want int, block time.Duration) ([]interpreter.Task, error) {
	var got []interpreter.Task
	timer := time.NewTimer(block)
	defer timer.Stop()
	select {
	case t := <-m.tasks:
		got = append(got, t)
	case <-timer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(got) < want {
		select {
		case t := <-m.tasks:
			got = append(got, t)
		default:
			return got, nil
		}
	}
	return got, nil
}

func (m *memTasks) ReclaimTaskBatch(context.Context, string, string, time.Duration, int) ([]interpreter.Task, bool, error) {
	return nil, false, nil
}

func (m *memTasks) CompleteTask(context.Context, interpreter.TaskRef, json.RawMessage, time.Time) error {
	m.done.Done()
	return nil
}

func (m *memTasks) FailTask(_ context.Context, _ interpreter.TaskRef, info interpreter.ErrorInfo, _ time.Time) error {
	select {
	case m.fails <- info:
	default:
	}
	m.done.Done()
	return nil
}

func (m *memTasks) ExtendTasks(_ context.Context, _ string, refs []interpreter.TaskRef) []error {
	return make([]error, len(refs))
}

func (m *memTasks) ReleaseTasks(_ context.Context, _ string, refs []interpreter.TaskRef) []error {
	return make([]error, len(refs))
}

// BenchmarkRuntimeTask: the runtime's work for one task, from its read to
// its outcome's report, for ReserveTicket's CalculateDiscount (an expr
// binding with a timeout) and for a Go handler.
func BenchmarkRuntimeTask(b *testing.B) {
	src, err := os.ReadFile("../workflows/reserve-ticket.yaml")
	if err != nil {
		b.Fatal(err)
	}
	def, err := dsl.Parse("reserve-ticket.yaml", src)
	if err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"expr", "go"} {
		b.Run(kind, func(b *testing.B) {
			cat := interpreter.NewCatalog(nil)
			cat.Add(def)
			reg := activity.NewRegistry()
			reg.Register("Discount", func(ctx context.Context, t activity.Task) (any, error) { return 10, nil })
			m := &memTasks{tasks: make(chan interpreter.Task, b.N), fails: make(chan interpreter.ErrorInfo, 1)}
			rt := activity.NewRuntime(m, cat, reg, activity.Options{Logger: logger(), Block: 10 * time.Millisecond})
			s := interpreter.ScheduleTask{Activity: "CalculateDiscount", Input: json.RawMessage(`"user1"`), Attempt: 1,
				StepID: "discount", DefHash: def.Hash, Workflow: def.Name, Queue: interpreter.LocalQueue, Timeout: 30 * time.Second}
			if kind == "go" {
				s = interpreter.ScheduleTask{Activity: "Discount", Input: json.RawMessage(`"user1"`), Attempt: 1, StepID: "discount", Queue: interpreter.LocalQueue}
			}
			m.done.Add(b.N)
			for i := range b.N {
				s.TaskID = fmt.Sprint("t", i)
				s.Instance = interpreter.InstanceID(fmt.Sprint("i", i))
				m.tasks <- interpreter.Task{Ref: interpreter.TaskRef{Queue: interpreter.LocalQueue, EntryID: s.TaskID, Instance: s.Instance, TaskID: s.TaskID}, Schedule: s}
			}
			b.ReportAllocs()
			b.ResetTimer()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); _ = rt.Run(ctx) }()
			defer func() { cancel(); wg.Wait() }()
			m.done.Wait()
			b.StopTimer()
			select {
			case info := <-m.fails:
				b.Fatalf("a task failed: %+v", info)
			default:
			}
		})
	}
}
