package redisstore

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// ReserveTicketTransitions are two transitions shaped like ReserveTicket's
// (workflows/reserve-ticket.yaml) of the instance id at revision from: the
// start, which schedules the discount activity, and the activity's
// outcome, which sets the custom status and starts the 60 s timer of the
// wait. Benchmarks of the commit path and the encoding tests use them.
func ReserveTicketTransitions(id string, from int64, at time.Time) (start, offer *interpreter.Transition) {
	iid := interpreter.InstanceID(id)
	task := "t1"
	base := interpreter.State{
		ID: iid, Name: "ReserveTicket", DefHash: "9f2c1e0a7b3d4c5e", Status: interpreter.StatusRunning,
		Input: json.RawMessage(`"user-42"`), CreatedTime: at, LastUpdatedTime: at,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	st := base
	st.Vars = map[string]json.RawMessage{"input": json.RawMessage(`"user-42"`)}
	st.Cursor = []interpreter.Frame{{Block: "steps", Index: 0}}
	st.Seq = 1
	st.Pending = &interpreter.Pending{Kind: interpreter.WaitActivity, StepID: "discount", Activity: "CalculateDiscount",
		TaskID: task, Queue: interpreter.LocalQueue, Attempt: 1, FirstAttempt: at, TimerID: "t2", Deadline: ptr(at.Add(30 * time.Second))}
	start = &interpreter.Transition{
		State: &st, FromRevision: from, WorkID: "1767323045000-0", StatusChanged: true,
		Commands: []interpreter.Command{
			&interpreter.ScheduleTask{TaskID: task, Instance: iid, Activity: "CalculateDiscount", Input: json.RawMessage(`"user-42"`),
				Attempt: 1, StepID: "discount", DefHash: st.DefHash, Workflow: st.Name, Queue: interpreter.LocalQueue,
				Timeout: 30 * time.Second, Trace: st.TraceParent},
			&interpreter.StartTimer{ID: "t2", Due: at.Add(30 * time.Second)},
		},
		History: []interpreter.HistoryEvent{
			{Type: "ExecutionStarted", Timestamp: at, Name: "ReserveTicket", Data: json.RawMessage(`"user-42"`)},
			{Type: "TaskScheduled", Timestamp: at, StepID: "discount", Name: "CalculateDiscount", Data: json.RawMessage(`"user-42"`), Attempt: 1},
		},
	}
	later := at.Add(3 * time.Millisecond)
	st2 := base
	st2.LastUpdatedTime = later
	st2.Vars = map[string]json.RawMessage{"input": json.RawMessage(`"user-42"`), "discount": json.RawMessage(`15`)}
	st2.Cursor = []interpreter.Frame{{Block: "steps", Index: 2}}
	st2.Seq = 3
	st2.CustomStatus = json.RawMessage(`{"bookingUrl":"https://example.com/book/user-42","discount":15,"discountTimeout":60}`)
	st2.Pending = &interpreter.Pending{Kind: interpreter.WaitEvent, StepID: "confirmation", Event: "BookingConfirmed",
		TimerID: "t3", Deadline: ptr(later.Add(time.Minute))}
	offer = &interpreter.Transition{
		State: &st2, FromRevision: from + 1, WorkID: "1767323045003-0", StatusChanged: true,
		Commands: []interpreter.Command{
			&interpreter.CancelTimer{ID: "t2"},
			&interpreter.StartTimer{ID: "t3", Due: later.Add(time.Minute)},
		},
		History: []interpreter.HistoryEvent{
			{Type: "TaskCompleted", Timestamp: later, StepID: "discount", Name: "CalculateDiscount", Data: json.RawMessage(`15`), Attempt: 1},
			{Type: "CustomStatusUpdated", Timestamp: later, StepID: "offer", Data: st2.CustomStatus},
			{Type: "TimerCreated", Timestamp: later, StepID: "confirmation", Name: "t3"},
		},
	}
	return start, offer
}

func ptr[T any](v T) *T { return &v }

// BenchmarkCommitArgs measures building the commit_transition commands of
// ReserveTicket's two transitions, without Redis: the encodings, the
// argument lists and go-redis's command, queued on a pipeline that is
// never sent. It is what the engine's commit costs the Go process besides
// the wire.
func BenchmarkCommitArgs(b *testing.B) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	s := New(client, Options{})
	ctx := context.Background()
	p := client.Pipeline()
	start, offer := ReserveTicketTransitions("bench-1", 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, c := range []struct {
		name string
		t    *interpreter.Transition
	}{{"start", start}, {"offer", offer}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				call, err := s.commitCall(c.t)
				if err != nil {
					b.Fatal(err)
				}
				evalSha(ctx, p, call)
				p.Discard()
			}
		})
	}
}
