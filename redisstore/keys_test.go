package redisstore

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
)

// docTable reads the key table of the package doc: pattern → type.
func docTable(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]string{}
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "//"))
		switch {
		case len(f) >= 2 && f[0] == "key" && f[1] == "type":
			in = true
		case in && strings.HasPrefix(line, "//\t") && len(f) >= 3:
			table[f[0]] = f[1]
		case in:
			in = false
		}
	}
	if len(table) == 0 {
		t.Fatal("no key table in doc.go")
	}
	return table
}

// TestKeyTable: the documented patterns are the ones keys.go builds.
func TestKeyTable(t *testing.T) {
	k := newKeys("")
	const p = 7
	id := interpreter.InstanceID("<id>")
	built := map[string]string{
		k.inst(p, id):         "hash",
		k.hist(p, id):         "list",
		k.work(p):             "stream",
		k.timers(p):           "zset",
		k.tasks(p, "<queue>"): "stream",
		k.index(p):            "zset",
		k.finished(p):         "zset",
		k.counts(p):           "hash",
		k.status(p, id):       "channel",
		k.withdrawn(p):        "channel",
		k.def("<name>"):       "hash",
		k.defs():              "set",
		k.engines():           "zset",
		k.meta():              "hash",
		k.slots("<name>"):     "zset",
		k.schedules():         "hash",
	}
	want := map[string]string{}
	for key, typ := range built {
		want[strings.ReplaceAll(key, "{7}", "{p}")] = typ
	}
	got := docTable(t)
	for pat, typ := range want {
		if got[pat] != typ {
			t.Errorf("keys.go builds %s (%s); doc.go says %q", pat, typ, got[pat])
		}
	}
	for pat := range got {
		if _, ok := want[pat]; !ok {
			t.Errorf("doc.go documents %s, which keys.go does not build", pat)
		}
	}
	if newKeys("x:").work(1) != "x:{1}:work" {
		t.Error("prefix with a trailing colon")
	}
}

// TestKeysInRedis exercises every operation, then checks that each key in
// Redis matches a documented pattern and has the documented type.
func TestKeysInRedis(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	s := New(client, Options{Partitions: 2, Retention: Retention{MaxCount: 10}})
	ctx := context.Background()
	now := time.Unix(1700000000, 0)
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	st := &interpreter.State{ID: "a", Name: "Wf", DefHash: "h", Status: interpreter.StatusPending, CreatedTime: now, LastUpdatedTime: now}
	if err := s.CreateInstance(ctx, interpreter.NewInstance{State: st, Start: interpreter.Event{Kind: interpreter.EvStart, Time: now}}); err != nil {
		t.Fatal(err)
	}
	items, err := s.ReadWork(ctx, "c", []int{0, 1}, 10, 0)
	if err != nil || len(items) != 1 {
		t.Fatal(items, err)
	}
	next := *st
	next.Status, next.Revision = interpreter.StatusRunning, 1
	errs, err := s.Commit(ctx, []*interpreter.Transition{{
		State: &next, WorkID: items[0].ID, StatusChanged: true,
		Commands: []interpreter.Command{
			&interpreter.ScheduleTask{TaskID: "t1", Instance: "a", Activity: "A", Input: json.RawMessage(`1`)},
			&interpreter.StartTimer{ID: "t2", Due: now.Add(time.Hour)},
		},
		History: []interpreter.HistoryEvent{{Type: "x", Timestamp: now}},
	}})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	// A finished instance, for the retention zset.
	done := next
	done.Status, done.Revision = interpreter.StatusCompleted, 2
	errs, err = s.Commit(ctx, []*interpreter.Transition{{State: &done, FromRevision: 1, StatusChanged: true}})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	if _, err := s.PutDefinition(ctx, "Wf", "h", []byte("src"), now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, "c", now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveScheduleState(ctx, &interpreter.ScheduleState{ID: "nightly", Workflow: "Wf", Next: now}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AcquireSlot(ctx, "Wf/A", "c/a/t1", 2, time.Minute, now); !ok || err != nil {
		t.Fatal(ok, err)
	}

	var pats []*regexp.Regexp
	types := map[*regexp.Regexp]string{}
	seen := map[*regexp.Regexp]bool{}
	for pat, typ := range docTable(t) {
		if typ == "channel" {
			continue
		}
		re := regexp.QuoteMeta(pat)
		re = strings.NewReplacer(`\{p\}`, `\{\d+\}`, "<id>", ".+", "<queue>", ".+", "<name>", ".+").Replace(re)
		r := regexp.MustCompile("^" + re + "$")
		pats = append(pats, r)
		types[r] = typ
	}
	for _, key := range client.Keys(ctx, "*").Val() {
		var match *regexp.Regexp
		for _, r := range pats {
			if r.MatchString(key) && (match == nil || len(r.String()) > len(match.String())) {
				match = r
			}
		}
		if match == nil {
			t.Errorf("key %s is not documented", key)
			continue
		}
		seen[match] = true
		if typ := client.Type(ctx, key).Val(); typ != types[match] {
			t.Errorf("key %s is a %s; doc.go says %s", key, typ, types[match])
		}
	}
	for _, r := range pats {
		if !seen[r] {
			t.Errorf("no key matches %s", r)
		}
	}
}

// TestClusterReadPath runs the stream-by-stream polling reads used on
// Redis Cluster against a single server.
func TestClusterReadPath(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	s := New(client, Options{Partitions: 4})
	s.perStream = true
	ctx := context.Background()
	now := time.Unix(1700000000, 0)
	for _, id := range []interpreter.InstanceID{"a", "b", "c", "d", "e"} {
		st := &interpreter.State{ID: id, Name: "Wf", Status: interpreter.StatusPending, CreatedTime: now}
		if err := s.CreateInstance(ctx, interpreter.NewInstance{State: st, Start: interpreter.Event{Kind: interpreter.EvStart}}); err != nil {
			t.Fatal(err)
		}
	}
	items, err := s.ReadWork(ctx, "c", []int{0, 1, 2, 3}, 100, 0)
	if err != nil || len(items) != 5 {
		t.Fatalf("read %d %v", len(items), err)
	}
	start := time.Now()
	items, err = s.ReadWork(ctx, "c", []int{0, 1, 2, 3}, 100, 200*time.Millisecond)
	if err != nil || len(items) != 0 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("empty read %d %v after %v", len(items), err, time.Since(start))
	}
	tasks, err := s.ReadTasks(ctx, "w", "fresh-queue", 1, 0)
	if err != nil || len(tasks) != 0 {
		t.Fatalf("tasks %v %v", tasks, err)
	}
}
