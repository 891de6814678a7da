package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// heartbeatWorkflow's activity must be heartbeated every second.
const heartbeatWorkflow = `
name: Heartbeats
activities:
  Pack: {timeout: 5m, scheduleToStart: 1m, heartbeat: 1s, retry: {maxAttempts: 2, firstInterval: 1s}}
steps:
  - activity: Pack
    result: r
  - return: ${ r }
`

// TestHeartbeatTimeoutOverHTTP: the polled task carries its activity's
// scheduleToStart and heartbeat timeouts; while the worker heartbeats
// (POST /v1/tasks/{id}/heartbeat) the attempt runs on past several
// heartbeat timeouts; once it stops, the attempt fails as
// HeartbeatTimeout, its heartbeat is refused, and the retry is handed out.
func TestHeartbeatTimeoutOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Heartbeats", heartbeatWorkflow), 201, "deploy")
	e.expect(e.do("POST", df+"/orchestrators/Heartbeats/hb-1", "application/json", []byte(`null`)), 202, "start")
	poll := func() (task struct {
		TaskID                 string   `json:"taskId"`
		Attempt                int      `json:"attempt"`
		ScheduleToStartSeconds *float64 `json:"scheduleToStartSeconds"`
		HeartbeatSeconds       *float64 `json:"heartbeatSeconds"`
	}) {
		b, _ := json.Marshal(map[string]any{"activities": []string{"Pack"}, "workerId": "w", "waitSeconds": 10})
		r := e.expect(e.do("POST", "/v1/tasks/poll", "application/json", b), 200, "poll")
		if err := json.Unmarshal(r.body, &task); err != nil {
			t.Fatal(err)
		}
		return task
	}
	hb := func(token string) resp {
		return e.do("POST", "/v1/tasks/"+token+"/heartbeat", "application/json", []byte(`{"workerId":"w"}`))
	}
	first := poll()
	if first.Attempt != 1 || first.ScheduleToStartSeconds == nil || *first.ScheduleToStartSeconds != 60 ||
		first.HeartbeatSeconds == nil || *first.HeartbeatSeconds != 1 {
		t.Fatalf("task %+v", first)
	}
	// Three heartbeat timeouts' worth of heartbeats, three a second.
	for range 9 {
		time.Sleep(300 * time.Millisecond)
		e.expect(hb(first.TaskID), 200, "heartbeat")
	}
	st, err := e.store.FetchStatus(context.Background(), "hb-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending == nil || st.Pending.Attempt != 1 || !st.Pending.Started {
		t.Fatalf("pending %+v after heartbeats, want attempt 1 running", st.Pending)
	}
	// Silence: the attempt fails and attempt 2 is handed out.
	second := poll()
	if second.Attempt != 2 || second.TaskID == first.TaskID {
		t.Fatalf("after the silence: task %+v, want attempt 2", second)
	}
	e.expect(hb(first.TaskID), 404, "heartbeat of the timed-out attempt")
	e.expect(e.do("POST", "/v1/tasks/"+second.TaskID+"/complete", "application/json", []byte(`{"result":"packed"}`)), 200, "complete")
	if st := e.waitFinished("hb-1"); st["runtimeStatus"] != "Completed" || st["output"] != "packed" {
		t.Fatalf("status %v", st)
	}
}
