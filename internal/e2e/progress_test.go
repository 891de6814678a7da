package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

const progressFlow = `
name: Progress20
activities:
  Pack: {worker: true, timeout: 1m}
steps:
  - id: fan
    forEach:
      items: ${ 1..20 }
      as: n
      parallel: true
      maxConcurrency: 5
      steps:
        - activity: Pack
          input: {n: "${ n }", i: "${ index }"}
          result: packed
      onItem:
        - setStatus: {done: "${ done }", total: "${ total }"}
      result: out
  - return: ${ map(out, .packed) }
`

// TestForEachProgressOnRedis runs a parallel forEach of 20 items with
// maxConcurrency 5 whose onItem publishes {done, total}. The test is the
// worker: it takes the Pack tasks from Redis and completes them one at a
// time, always the newest, so the items end out of order. It checks that
// no more than 5 tasks are ever handed out at once (and 5 are, while 5 or
// more items are left), that GET status shows waitingFor {kind: branches,
// branches: 20, done: n} and the custom status {done: n, total: 20} after
// each end, and that the history holds done = 1…20 in order.
func TestForEachProgressOnRedis(t *testing.T) {
	e := newEnv(t)
	e.deploy("progress.yaml", []byte(progressFlow))
	e.run(interpreter.EngineOptions{Consumer: "progress"})
	api := httptest.NewServer(httpapi.New(httpapi.Config{Backend: e.store, Catalog: e.cat, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer api.Close()

	// The worker: every task it is handed goes to tasks.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tasks := make(chan redisstore.Task, 64)
	go func() {
		for ctx.Err() == nil {
			got, err := e.store.ReadTasks(ctx, "progress-worker", "Pack", 64, 100*time.Millisecond)
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			for _, tk := range got {
				tasks <- tk
			}
		}
	}()

	e.start("Progress20", "prog-1", nil)
	var live []redisstore.Task
	handed, maxLive := 0, 0
	// take receives tasks until want are in flight, failing on one more.
	take := func(want int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for len(live) < want {
			select {
			case tk := <-tasks:
				live = append(live, tk)
				handed++
				maxLive = max(maxLive, len(live))
			case <-deadline:
				t.Fatalf("%d tasks in flight after 20 s, want %d", len(live), want)
			}
		}
		// A sixth task would come with the fifth's transition or right after.
		select {
		case tk := <-tasks:
			t.Fatalf("task %s handed out with %d in flight (maxConcurrency 5)", tk.Schedule.Input, len(live))
		case <-time.After(50 * time.Millisecond):
		}
	}
	for done := 0; done < 20; done++ {
		take(min(5, 20-done))
		if done > 0 {
			wantProgress(t, api.URL, "prog-1", done)
		}
		tk := live[len(live)-1]
		live = live[:len(live)-1]
		var in struct{ N, I int }
		if err := json.Unmarshal(tk.Schedule.Input, &in); err != nil || in.I != in.N-1 {
			t.Fatalf("task input %s: index is not the item's position", tk.Schedule.Input)
		}
		raw, _ := json.Marshal(fmt.Sprintf("box-%d", in.N))
		if err := e.store.CompleteTask(ctx, tk.Ref, raw, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	st := e.waitDone("prog-1", 20*time.Second)
	if st.Status != interpreter.StatusCompleted {
		t.Fatalf("status %s output %s", st.Status, st.Output)
	}
	want := "["
	for n := 1; n <= 20; n++ {
		if n > 1 {
			want += ","
		}
		want += fmt.Sprintf(`"box-%d"`, n)
	}
	jsonEq(t, "output", st.Output, want+"]")
	jsonEq(t, "custom status", st.CustomStatus, `{"done":20,"total":20}`)
	if handed != 20 || maxLive != 5 {
		t.Fatalf("%d tasks handed out, at most %d in flight; want 20 and 5", handed, maxLive)
	}

	hist, err := e.store.FetchHistory(context.Background(), "prog-1")
	if err != nil {
		t.Fatal(err)
	}
	var dones []int
	for _, h := range hist {
		if h.Type == "CustomStatusUpdated" {
			var s struct{ Done, Total int }
			if err := json.Unmarshal(h.Data, &s); err != nil || s.Total != 20 {
				t.Fatalf("status %s", h.Data)
			}
			dones = append(dones, s.Done)
		}
	}
	for i, d := range dones {
		if d != i+1 {
			t.Fatalf("the custom statuses count %v, want 1…20 in order", dones)
		}
	}
	if len(dones) != 20 {
		t.Fatalf("%d custom statuses, want 20: %v", len(dones), dones)
	}
}

// wantProgress polls GET status until it shows done items of 20: the
// join's counts in waitingFor and the onItem's custom status.
func wantProgress(t *testing.T, base, id string, done int) {
	t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/runtime/webhooks/durabletask/instances/" + id)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(body)
		var p struct {
			CustomStatus struct{ Done, Total int } `json:"customStatus"`
			WaitingFor   *struct {
				Kind     string `json:"kind"`
				Branches int    `json:"branches"`
				Done     *int   `json:"done"`
			} `json:"waitingFor"`
			CurrentStep string `json:"currentStep"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("GET status: %v: %s", err, body)
		}
		if w := p.WaitingFor; w != nil && w.Done != nil && *w.Done == done {
			if w.Kind != "branches" || w.Branches != 20 || p.CurrentStep != "fan" || p.CustomStatus.Done != done || p.CustomStatus.Total != 20 {
				t.Fatalf("after %d ends, GET status: %s", done, body)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("GET status never showed %d done: %s", done, last)
}
