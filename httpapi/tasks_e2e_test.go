package httpapi_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// workerWorkflow is ReserveTicket whose CalculateDiscount waits for an
// external worker (no binding).
const workerWorkflow = `
name: WorkerTicket
activities:
  CalculateDiscount: {timeout: 30s, retry: {maxAttempts: 3, firstInterval: 1s}}
steps:
  - activity: CalculateDiscount
    input: ${ input }
    result: discount
  - setStatus: {discount: "${ discount }"}
  - return: ${ discount }
`

// TestShellWorker runs examples/worker/calculate-discount.sh, the example
// worker in bash and curl, against a real server: it takes the task by long
// poll, heartbeats and completes it, and the instance finishes with its
// result.
func TestShellWorker(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl not found: install it with 'apt-get install -y curl'")
		}
		t.Skip("curl not found")
	}
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("WorkerTicket", workerWorkflow), 201, "deploy")
	e.expect(e.do("POST", df+"/orchestrators/WorkerTicket/w-1", "application/json", []byte(`"user1"`)), 202, "start")

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../examples/worker/calculate-discount.sh")
	cmd.Env = append(os.Environ(), "CAIRN_URL="+e.api.URL, "WORKER_ID=sh-1", "WAIT_SECONDS=5", "MAX_TASKS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("worker: %v\n%s", err, out)
	}
	st := e.waitFinished("w-1")
	if st["runtimeStatus"] != "Completed" || st["output"] != float64(20) {
		t.Fatalf("status %v\nworker output:\n%s", st, out)
	}
}

// waitFinished polls GET status until the instance has finished.
func (e *env) waitFinished(id string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		r := e.do("GET", df+"/instances/"+id, "", nil)
		if r.code == 200 {
			return r.json(e.t)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("instance %s did not finish", id)
	return nil
}

// TestWorkerProtocol drives the /v1/tasks endpoints by hand: every status
// code of docs/activities.md, a retryable failure that is retried, and a
// lease taken over by another worker.
func TestWorkerProtocol(t *testing.T) {
	e := newEnv(t)
	e.startEngine()
	e.expect(e.deploy("WorkerTicket", workerWorkflow), 201, "deploy")
	e.expect(e.do("POST", df+"/orchestrators/WorkerTicket/p-1", "application/json", []byte(`"abc"`)), 202, "start")

	poll := func(worker string, wait int) resp {
		b, _ := json.Marshal(map[string]any{"activities": []string{"CalculateDiscount"}, "workerId": worker, "waitSeconds": wait})
		return e.do("POST", "/v1/tasks/poll", "application/json", b)
	}
	// Bad polls.
	e.expect(e.do("POST", "/v1/tasks/poll", "application/json", []byte(`{"workerId":"x"}`)), 400, "no activities")
	e.expect(e.do("POST", "/v1/tasks/poll", "application/json", []byte(`{"activities":["A"],"workerId":"bad id"}`)), 400, "bad worker id")
	e.expect(e.do("POST", "/v1/tasks/poll", "application/json", []byte(`{"activities":["A"],"workerId":"x","waitSeconds":61}`)), 400, "wait too long")
	e.expect(e.do("POST", "/v1/tasks/poll", "application/json", []byte(`{"activities":`)), 400, "malformed JSON")
	e.expect(e.do("POST", "/v1/tasks/poll", "application/json", []byte(`{"activities":["Nothing"],"workerId":"x","waitSeconds":0}`)), 204, "no task")

	r := e.expect(poll("a", 10), 200, "poll")
	var task struct {
		TaskID         string          `json:"taskId"`
		Activity       string          `json:"activity"`
		Input          json.RawMessage `json:"input"`
		Attempt        int             `json:"attempt"`
		InstanceID     string          `json:"instanceId"`
		TimeoutSeconds *float64        `json:"timeoutSeconds"`
		LeaseSeconds   float64         `json:"leaseSeconds"`
	}
	if err := json.Unmarshal(r.body, &task); err != nil {
		t.Fatal(err)
	}
	if task.Activity != "CalculateDiscount" || string(task.Input) != `"abc"` || task.Attempt != 1 || task.InstanceID != "p-1" ||
		task.TimeoutSeconds == nil || *task.TimeoutSeconds != 30 || task.LeaseSeconds != 30 {
		t.Fatalf("task %s", r.body)
	}
	hb := func(token, worker string) resp {
		return e.do("POST", "/v1/tasks/"+token+"/heartbeat", "application/json", []byte(`{"workerId":"`+worker+`"}`))
	}
	e.expect(hb(task.TaskID, "a"), 200, "heartbeat")
	e.expect(e.do("POST", "/v1/tasks/"+task.TaskID+"/heartbeat", "application/json", []byte(`{}`)), 400, "heartbeat without worker")
	e.expect(hb("bm90LWEtdG9rZW4", "a"), 404, "heartbeat of an unknown token")

	// A retryable failure: attempt 2 comes after the retry delay.
	e.expect(e.do("POST", "/v1/tasks/"+task.TaskID+"/fail", "application/json",
		[]byte(`{"error":{"type":"Busy","message":"try later","retryable":true}}`)), 200, "fail")
	e.expect(e.do("POST", "/v1/tasks/"+task.TaskID+"/complete", "application/json", []byte(`{"result":1}`)), 404, "complete after fail")
	e.expect(hb(task.TaskID, "a"), 404, "heartbeat of a closed task")
	r = e.expect(poll("a", 10), 200, "poll the retry")
	var retry struct {
		TaskID  string `json:"taskId"`
		Attempt int    `json:"attempt"`
	}
	json.Unmarshal(r.body, &retry)
	if retry.Attempt != 2 {
		t.Fatalf("retry %s", r.body)
	}

	// Worker a goes silent; once its lease is over (simulated by the store
	// reclaiming with no idle time) worker b holds the task and a's
	// heartbeat is told so.
	ref, err := interpreter.ParseTaskToken(retry.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := e.store.ReclaimTasks(context.Background(), "w:b", ref.Queue, 0, 1)
	if err != nil || len(taken) != 1 {
		t.Fatalf("reclaim: %v %v", taken, err)
	}
	e.expect(hb(retry.TaskID, "a"), 409, "heartbeat after the lease was lost")
	e.expect(e.do("POST", "/v1/tasks/"+retry.TaskID+"/complete", "application/json", []byte(`{"result":42}`)), 200, "complete")
	e.expect(e.do("POST", "/v1/tasks/"+retry.TaskID+"/complete", "application/json", []byte(`{"result":43}`)), 404, "duplicate completion")
	e.expect(e.do("POST", "/v1/tasks/"+retry.TaskID+"/complete", "application/json", []byte(`[1]`)), 400, "body not an object")

	st := e.waitFinished("p-1")
	if st["output"] != float64(42) {
		t.Fatalf("output %v", st["output"])
	}
}
