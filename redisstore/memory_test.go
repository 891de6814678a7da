package redisstore_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestMemoryPerInstance: a completed instance costs at most 2 KB of Redis
// memory with history retention off (work items acknowledged, so only the
// instance hash and its index entry remain).
func TestMemoryPerInstance(t *testing.T) {
	e := newEnv(t, redisstore.Options{HistoryMax: redisstore.NoHistory})
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
	before := used()
	const n = 2000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("order-%08d-5f2c", i)
		e.create(id, t0)
	}
	items := e.readAll("c")
	for _, it := range items {
		tr := e.transition(string(it.Instance), it.ID, func(s *interpreter.State) {
			s.Status = interpreter.StatusCompleted
			s.Vars = map[string]json.RawMessage{"discount": json.RawMessage(`20`)}
			s.CustomStatus = json.RawMessage(`{"message":"Thank you for confirming your booking."}`)
			s.Output = json.RawMessage(`true`)
			s.Cursor = []interpreter.Frame{{Block: "", Index: 5}}
			s.Seq = 3
			s.DefHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		})
		if errs := e.commit(tr); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	per := (used() - before) / n
	key := e.client.Keys(e.ctx, "*:inst:order-00000000-5f2c").Val()[0]
	sample := e.client.MemoryUsage(e.ctx, key).Val()
	t.Logf("%d bytes per completed instance (hash alone about %d)", per, sample)
	if per > 2048 {
		t.Fatalf("%d bytes per completed instance, want ≤ 2048", per)
	}
}
