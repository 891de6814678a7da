package redisstore_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestMembers: beats, the members read back, a second beat is no new
// member, and a forgotten one is.
func TestMembers(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 2})
	if added, err := e.s.Heartbeat(e.ctx, "a", 10); err != nil || !added {
		t.Fatalf("first beat: %v %v", added, err)
	}
	if added, err := e.s.Heartbeat(e.ctx, "a", 11); err != nil || added {
		t.Fatalf("second beat: %v %v", added, err)
	}
	if _, err := e.s.Heartbeat(e.ctx, "b", 5); err != nil {
		t.Fatal(err)
	}
	m, err := e.s.Members(e.ctx)
	if err != nil || len(m) != 2 || m["a"] != 11 || m["b"] != 5 {
		t.Fatalf("members %v %v", m, err)
	}
	if gone, err := e.s.Forget(e.ctx, "b"); err != nil || !gone {
		t.Fatalf("forget: %v %v", gone, err)
	}
	if gone, _ := e.s.Forget(e.ctx, "b"); gone {
		t.Fatal("forgot b twice")
	}
	if added, _ := e.s.Heartbeat(e.ctx, "b", 6); !added {
		t.Fatal("a forgotten engine's beat is no new member")
	}
}

// TestTakeOver: everything a silent consumer holds moves to the taker
// whatever its idle time: its pending work items (returned, held by the
// taker) and its leased tasks (handed to the next reclaim), and the dead
// consumer leaves the groups. It holds nothing afterwards, and its late
// commit is refused by revision.
func TestTakeOver(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 2})
	for _, id := range []string{"a", "b", "c", "d"} {
		e.create(id, t0)
	}
	items := e.readAll("dead")
	if len(items) != 4 {
		t.Fatalf("read %d items", len(items))
	}
	// dead commits a's start, which schedules a task, and leases it.
	var aItem string
	var rest []interpreter.WorkItem
	for _, it := range items {
		if it.Instance == "a" {
			aItem = it.ID
		} else {
			rest = append(rest, it)
		}
	}
	task := &interpreter.ScheduleTask{TaskID: "t1", Instance: "a", Activity: "A", Input: json.RawMessage(`1`)}
	if errs := e.commit(e.transition("a", aItem, nil, task)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	tasks, err := e.s.ReadTaskBatch(e.ctx, "dead", interpreter.LocalQueue, 10, 0)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("lease %v %v", tasks, err)
	}
	stale := e.transition(string(rest[0].Instance), rest[0].ID, nil)

	// Taken over one item per stream at a time, as a small batch would.
	var got []interpreter.WorkItem
	moved := 0
	for i := 0; ; i++ {
		its, n, done, err := e.s.TakeOver(e.ctx, "dead", "alive", 1)
		if err != nil {
			t.Fatal(err)
		}
		got, moved = append(got, its...), moved+n
		if done {
			break
		}
		if i == 10 {
			t.Fatal("take-over never done")
		}
	}
	if moved != 1 {
		t.Errorf("moved %d tasks; want 1", moved)
	}
	ids := func(its []interpreter.WorkItem) []string {
		var out []string
		for _, it := range its {
			out = append(out, it.ID+"/"+string(it.Instance))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ids(got), ids(rest)) {
		t.Errorf("took over %v; want %v", ids(got), ids(rest))
	}
	for _, it := range got {
		if it.Event.Kind != interpreter.EvStart {
			t.Errorf("item %s decoded as %v", it.ID, it.Event.Kind)
		}
	}
	// dead is in no group any more; alive holds the items.
	for _, st := range []string{"cairn:{0}:work", "cairn:{1}:work", "cairn:{" + strconv.Itoa(redisstore.PartitionOf("a", 2)) + "}:tasks:" + interpreter.LocalQueue} {
		cs, err := e.client.XInfoConsumers(e.ctx, st, groupOf(st)).Result()
		if err != nil {
			t.Fatal(st, err)
		}
		for _, c := range cs {
			if c.Name == "dead" {
				t.Errorf("%s: dead is still a consumer (%d pending)", st, c.Pending)
			}
		}
	}
	// The task is handed to the next reclaim, however long its lease.
	re, _, err := e.s.ReclaimTaskBatch(e.ctx, "runtime", interpreter.LocalQueue, 30*time.Second, 10)
	if err != nil || len(re) != 1 || re[0].Ref.TaskID != "t1" {
		t.Fatalf("reclaim after take-over: %v %v", re, err)
	}
	// Nothing is left to take over.
	if its, n, done, err := e.s.TakeOver(e.ctx, "dead", "other", 10); err != nil || len(its) != 0 || n != 0 || !done {
		t.Fatalf("second take-over: %v %d %v %v", its, n, done, err)
	}
	// The taker commits; the dead consumer, back, is refused.
	for _, it := range got {
		if errs := e.commit(e.transition(string(it.Instance), it.ID, nil)); errs[0] != nil {
			t.Fatalf("taker's commit of %s: %v", it.Instance, errs[0])
		}
	}
	if errs := e.commit(stale); !errors.Is(errs[0], interpreter.ErrConflict) {
		t.Fatalf("late commit of the engine taken over: %v; want ErrConflict", errs[0])
	}
	if _, _, _, err := e.s.TakeOver(e.ctx, "x", "x", 1); err == nil {
		t.Fatal("an engine took over from itself")
	}
}

func groupOf(stream string) string {
	if strings.Contains(stream, ":tasks:") {
		return "workers"
	}
	return "engine"
}

// TestPartitionGuard: the partition count is recorded by the first Init;
// a store with another count is refused with both numbers, one with the
// same is not, and data written before the count was recorded is
// recognised by its work streams.
func TestPartitionGuard(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	if v := e.client.HGet(e.ctx, "cairn:meta", "partitions").Val(); v != "4" {
		t.Fatalf("recorded %q; want 4", v)
	}
	err := redisstore.New(e.client, redisstore.Options{Partitions: 8}).Init(e.ctx)
	var pe *redisstore.PartitionsError
	if !errors.As(err, &pe) || pe.Stored != 4 || pe.Configured != 8 ||
		!strings.Contains(err.Error(), "written with 4 partitions") || !strings.Contains(err.Error(), "configured with 8") {
		t.Fatalf("Init with 8 partitions over data of 4: %v", err)
	}
	if err := redisstore.New(e.client, redisstore.Options{Partitions: 4}).Init(e.ctx); err != nil {
		t.Fatalf("Init with the same count: %v", err)
	}
	// Another prefix is another deployment.
	if err := redisstore.New(e.client, redisstore.Options{Partitions: 8, Prefix: "other"}).Init(e.ctx); err != nil {
		t.Fatalf("Init of another prefix: %v", err)
	}
	// Data from before the guard: work streams of 4 partitions, no record.
	e.client.Del(e.ctx, "cairn:meta")
	err = redisstore.New(e.client, redisstore.Options{Partitions: 2}).Init(e.ctx)
	if !errors.As(err, &pe) || pe.Stored != 4 || pe.Configured != 2 {
		t.Fatalf("Init with 2 partitions over unrecorded data of 4: %v", err)
	}
	if v := e.client.HGet(e.ctx, "cairn:meta", "partitions").Val(); v != "4" {
		t.Fatalf("recorded %q for unrecorded data of 4 partitions", v)
	}
}
