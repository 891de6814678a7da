package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// chargeWorkflow waits for an external worker's Charge.
const chargeWorkflow = `
name: Order
activities:
  Charge: {timeout: 60s}
steps:
  - activity: Charge
    input: ${ input }
    result: charged
  - return: ${ charged }
`

// post sends a JSON body and returns the status and body; safe to call
// from any goroutine (it reports errors instead of failing the test).
func (e *env) post(path string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	res, err := http.Post(e.api.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// waitQueued waits until the instance waits for its activity (its task
// is queued).
func (e *env) waitQueued(id string) {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(id))
		if err == nil && st.Pending != nil && st.Pending.Kind == interpreter.WaitActivity {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never waited for its activity: %+v, %v", id, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus waits until the instance has the runtime status.
func (e *env) waitStatus(id string, want interpreter.RuntimeStatus) {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(id))
		if err == nil && st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never became %s: %+v, %v", id, want, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type handedOut struct {
	sent     time.Time // when the poll that got it was sent
	instance string
	token    string
}

// TestTerminateWithdrawsQueuedWorkerTasks: 1,000 instances each queue a
// worker task; while workers poll, half of them are terminated. No task
// of an instance is handed out after the instance was seen terminated
// (a poll sent after that moment got none of its tasks), every other
// instance's task is handed out, nothing is left queued, and a heartbeat
// or completion of a terminated instance's task handed out before its
// end answers 410 instance-finished.
func TestTerminateWithdrawsQueuedWorkerTasks(t *testing.T) {
	const n = 1000
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Order", chargeWorkflow), 201, "deploy")
	id := func(i int) string { return fmt.Sprintf("o-%04d", i) }
	terminated := func(i int) bool { return i%2 == 1 }

	// Start them all, 8 at a time, and wait until every task is queued.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code, body, err := e.post(df+"/orchestrators/Order/"+id(i), i)
			if err == nil && code != 202 {
				err = fmt.Errorf("start %s: %d %s", id(i), code, body)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range n {
		e.waitQueued(id(i))
	}

	// Workers poll, a little slowly, so that many tasks are still queued
	// when their instances are terminated.
	var mu sync.Mutex
	var got []handedOut
	stop := make(chan struct{})
	workerErr := make(chan error, 2)
	var workers sync.WaitGroup
	for w := range 2 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				stopping := false
				select {
				case <-stop:
					stopping = true
				default:
				}
				sent := time.Now()
				code, body, err := e.post("/v1/tasks/poll", map[string]any{
					"activities": []string{"Charge"}, "workerId": fmt.Sprint("w", w), "waitSeconds": 1})
				if err != nil {
					workerErr <- err
					return
				}
				switch code {
				case 200:
					var task struct {
						TaskID     string `json:"taskId"`
						InstanceID string `json:"instanceId"`
					}
					if err := json.Unmarshal(body, &task); err != nil {
						workerErr <- err
						return
					}
					mu.Lock()
					got = append(got, handedOut{sent, task.InstanceID, task.TaskID})
					mu.Unlock()
				case 204:
					if stopping {
						return
					}
				default:
					workerErr <- fmt.Errorf("poll: %d %s", code, body)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	// Terminate half, the last started first (their tasks are at the
	// tail of the queues), then note when each is seen terminated.
	for i := n - 1; i >= 0; i-- {
		if terminated(i) {
			e.expect(e.do("POST", df+"/instances/"+id(i)+"/terminate?reason=cancelled", "", nil), 202, "terminate "+id(i))
		}
	}
	seen := map[string]time.Time{}
	for i := n - 1; i >= 0; i-- {
		if terminated(i) {
			e.waitStatus(id(i), interpreter.StatusTerminated)
			seen[id(i)] = time.Now()
		}
	}
	// Let the workers drain what is left, then stop at their first empty
	// poll.
	deadline := time.Now().Add(waitLimit)
	for {
		mu.Lock()
		live := 0
		for _, h := range got {
			if _, term := seen[h.instance]; !term {
				live++
			}
		}
		mu.Unlock()
		if live >= n/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of the %d live instances' tasks were handed out", live, n/2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	workers.Wait()
	close(workerErr)
	for err := range workerErr {
		t.Fatal(err)
	}

	perInstance := map[string]int{}
	late, early := 0, 0
	var earlyTokens []string
	for _, h := range got {
		perInstance[h.instance]++
		at, term := seen[h.instance]
		switch {
		case term && !h.sent.Before(at):
			late++
			t.Errorf("%s's task was handed out to a poll sent %s after the instance was seen terminated", h.instance, h.sent.Sub(at))
		case term:
			early++
			earlyTokens = append(earlyTokens, h.token)
		}
	}
	for i := range n {
		if c := perInstance[id(i)]; !terminated(i) && c != 1 {
			t.Errorf("%s's task was handed out %d times, want once", id(i), c)
		}
	}
	handed := map[string]bool{}
	for _, h := range got {
		if _, term := seen[h.instance]; term {
			handed[h.instance] = true
		}
	}
	withdrawn := n/2 - len(handed)
	t.Logf("%d tasks handed out: %d of live instances, %d of terminated ones before their terminate, %d after it; %d terminated instances' tasks never handed out",
		len(got), len(got)-early-late, early, late, withdrawn)
	if late != 0 {
		t.Fatalf("%d tasks of terminated instances were handed out after their terminate", late)
	}
	if withdrawn == 0 {
		t.Fatal("every terminated instance's task was handed out before its terminate: the test withdrew nothing")
	}
	// Nothing is left queued: a poll finds no task.
	e.expect(e.do("POST", "/v1/tasks/poll", "application/json", []byte(`{"activities":["Charge"],"workerId":"last","waitSeconds":0}`)), 204, "poll after the drain")

	// A worker still holding a terminated instance's task is told to stop.
	for _, tok := range earlyTokens {
		for _, call := range []struct{ path, body string }{
			{"/heartbeat", `{"workerId":"w0"}`},
			{"/complete", `{"result":1}`},
		} {
			r := e.do("POST", "/v1/tasks/"+tok+call.path, "application/json", []byte(call.body))
			if r.code != 410 || r.json(t)["error"] != "instance-finished" {
				t.Fatalf("%s of a terminated instance's task: %d %s, want 410 instance-finished", call.path, r.code, r.body)
			}
		}
	}
}

// TestWithdrawnTaskAnswers410: a worker that holds a task when its instance
// is terminated gets 410 instance-finished for its heartbeat, completion
// and failure, and nobody is handed the task again.
func TestWithdrawnTaskAnswers410(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Order", chargeWorkflow), 201, "deploy")
	e.expect(e.do("POST", df+"/orchestrators/Order/x1", "application/json", []byte(`1`)), 202, "start")
	poll := func(wait int) resp {
		return e.do("POST", "/v1/tasks/poll", "application/json",
			[]byte(fmt.Sprintf(`{"activities":["Charge"],"workerId":"w","waitSeconds":%d}`, wait)))
	}
	r := e.expect(poll(10), 200, "poll")
	token, _ := r.json(t)["taskId"].(string)
	e.expect(e.do("POST", "/v1/tasks/"+token+"/heartbeat", "application/json", []byte(`{"workerId":"w"}`)), 200, "heartbeat while running")
	e.expect(e.do("POST", df+"/instances/x1/terminate?reason=cancelled", "", nil), 202, "terminate")
	e.waitStatus("x1", interpreter.StatusTerminated)
	for _, call := range []struct{ path, body string }{
		{"/heartbeat", `{"workerId":"w"}`},
		{"/complete", `{"result":1}`},
		{"/fail", `{"error":{"type":"Declined","message":"no"}}`},
	} {
		r := e.do("POST", "/v1/tasks/"+token+call.path, "application/json", []byte(call.body))
		m := r.json(t)
		if r.code != 410 || m["error"] != "instance-finished" || m["message"] == "" {
			t.Fatalf("%s after the terminate: %d %s, want 410 instance-finished", call.path, r.code, r.body)
		}
	}
	e.expect(poll(0), 204, "poll after the terminate")
	// A task that merely completed twice is still a 404, not a 410.
	e.expect(e.do("POST", df+"/orchestrators/Order/x2", "application/json", []byte(`2`)), 202, "start x2")
	r = e.expect(poll(10), 200, "poll x2")
	token, _ = r.json(t)["taskId"].(string)
	e.expect(e.do("POST", "/v1/tasks/"+token+"/complete", "application/json", []byte(`{"result":2}`)), 200, "complete x2")
	e.waitStatus("x2", interpreter.StatusCompleted)
	e.expect(e.do("POST", "/v1/tasks/"+token+"/complete", "application/json", []byte(`{"result":3}`)), 404, "complete x2 again")
}

// TestSuspendHoldsWorkerTasks: a suspended instance's queued task is handed
// to no worker until it is resumed; then it is, and the instance goes on.
func TestSuspendHoldsWorkerTasks(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("Order", chargeWorkflow), 201, "deploy")
	e.expect(e.do("POST", df+"/orchestrators/Order/s1", "application/json", []byte(`7`)), 202, "start")
	e.waitQueued("s1")
	e.expect(e.do("POST", df+"/instances/s1/suspend?reason=hold", "", nil), 202, "suspend")
	e.waitStatus("s1", interpreter.StatusSuspended)
	poll := func(wait int) resp {
		return e.do("POST", "/v1/tasks/poll", "application/json",
			[]byte(fmt.Sprintf(`{"activities":["Charge"],"workerId":"w","waitSeconds":%d}`, wait)))
	}
	e.expect(poll(1), 204, "poll while suspended")
	e.expect(e.do("POST", df+"/instances/s1/resume?reason=go", "", nil), 202, "resume")
	r := e.expect(poll(10), 200, "poll after the resume")
	m := r.json(t)
	if m["instanceId"] != "s1" || m["input"] != float64(7) {
		t.Fatalf("task %s", r.body)
	}
	token, _ := m["taskId"].(string)
	e.expect(e.do("POST", "/v1/tasks/"+token+"/complete", "application/json", []byte(`{"result":"ok"}`)), 200, "complete")
	if st := e.waitFinished("s1"); st["runtimeStatus"] != "Completed" || st["output"] != "ok" {
		t.Fatalf("status %v", st)
	}
}
