package redisstore_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestMemoryPerInstance: a completed ReserveTicket-like instance (four
// transitions with their history lines) costs at most 2 KB of Redis
// memory with the default history retention, and about half that without
// history (work items acknowledged and trimmed, so only the instance hash,
// its history and its index entry remain).
func TestMemoryPerInstance(t *testing.T) {
	redistest.SkipOnCluster(t, "it reads one server's INFO used_memory")
	for _, c := range []struct {
		name string
		opts redisstore.Options
		max  int64
	}{
		{"default history", redisstore.Options{}, 2048},
		{"no history", redisstore.Options{HistoryMax: redisstore.NoHistory}, 1280},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opts)
			per := completedInstanceMemory(t, e, 2000)
			t.Logf("%d bytes per completed instance", per)
			if per > c.max {
				t.Fatalf("%d bytes per completed instance, want ≤ %d", per, c.max)
			}
		})
	}
}

// reserveTicketHistory is the history a ReserveTicket instance writes, one
// slice per transition, as the interpreter words it.
func reserveTicketHistory(at time.Time) [][]interpreter.HistoryEvent {
	return [][]interpreter.HistoryEvent{
		{{Type: "ExecutionStarted", Timestamp: at, Name: "ReserveTicket", Data: json.RawMessage(`{"city":"Paris"}`)},
			{Type: "TaskScheduled", Timestamp: at, StepID: "discount", Name: "GetDiscount", Data: json.RawMessage(`{"city":"Paris"}`)}},
		{{Type: "TaskCompleted", Timestamp: at, StepID: "discount", Name: "GetDiscount", Data: json.RawMessage(`20`)},
			{Type: "CustomStatusUpdated", Timestamp: at, StepID: "offer", Data: json.RawMessage(`{"discount":20,"discountTimeout":60,"bookingUrl":"https://example.com/book"}`)},
			{Type: "TimerCreated", Timestamp: at, StepID: "confirm", Name: "w2"}},
		{{Type: "EventRaised", Timestamp: at, StepID: "confirm", Name: "BookingConfirmed", Data: json.RawMessage(`true`)},
			{Type: "CustomStatusUpdated", Timestamp: at, StepID: "thanks", Data: json.RawMessage(`{"message":"Thank you for confirming your booking."}`)},
			{Type: "ExecutionCompleted", Timestamp: at, Data: json.RawMessage(`true`)}},
	}
}

// completedInstanceMemory creates and completes n instances the way the
// engine would and returns the used_memory growth per instance.
func completedInstanceMemory(t *testing.T, e *env, n int) int64 {
	t.Helper()
	used := func() int64 {
		info := e.client.Info(e.ctx, "memory").Val()
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return n
			}
		}
		t.Fatal("no used_memory")
		return 0
	}
	// Warm up: streams, groups, scripts.
	e.create("warm", t0)
	e.readAll("c")
	for p := range e.parts() {
		if _, err := e.s.TrimWork(e.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	before := used()
	for i := 0; i < n; i++ {
		e.create(fmt.Sprintf("order-%08d-5f2c", i), t0)
	}
	items := e.readAll("c")
	for _, it := range items {
		hist := reserveTicketHistory(t0)
		for j, lines := range hist {
			work := ""
			if j == 0 {
				work = it.ID
			}
			tr := e.transition(string(it.Instance), work, func(s *interpreter.State) {
				s.Status = interpreter.StatusRunning
				s.Vars = map[string]json.RawMessage{"discount": json.RawMessage(`20`)}
				s.CustomStatus = json.RawMessage(`{"discount":20,"discountTimeout":60,"bookingUrl":"https://example.com/book"}`)
				s.Cursor = []interpreter.Frame{{Block: "", Index: j + 2}}
				s.Seq = int64(j + 1)
				s.DefHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
				if j == len(hist)-1 {
					s.Status = interpreter.StatusCompleted
					s.CustomStatus = json.RawMessage(`{"message":"Thank you for confirming your booking."}`)
					s.Output = json.RawMessage(`true`)
					s.Cursor = nil
				}
			})
			tr.History = lines
			tr.StatusChanged = true
			if errs := e.commit(tr); errs[0] != nil {
				t.Fatal(errs[0])
			}
		}
	}
	for p := range e.parts() {
		if _, err := e.s.TrimWork(e.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return (used() - before) / int64(n)
}
