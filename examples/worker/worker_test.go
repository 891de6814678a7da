// Package worker holds example external workers; this test runs
// calculate-discount.sh against a fake server that speaks the worker
// protocol of docs/activities.md.
package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer hands out tasks in order, then answers 204, and records the
// calls it gets.
type fakeServer struct {
	t     *testing.T
	mu    sync.Mutex
	tasks []string // poll answers
	calls []string // "METHOD path body"
	lost  string   // a task whose heartbeat answers 409
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+string(body))
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Authorization") != "Bearer k1" || !json.Valid(body) {
		http.Error(w, `{"error":"bad-request","message":"want an authorized POST of JSON"}`, http.StatusBadRequest)
		return
	}
	switch {
	case r.URL.Path == "/v1/tasks/poll":
		var p struct {
			Activities  []string
			WorkerID    string
			WaitSeconds int
		}
		if err := json.Unmarshal(body, &p); err != nil || fmt.Sprint(p.Activities) != "[CalculateDiscount]" || p.WorkerID != "w1" || p.WaitSeconds != 1 {
			http.Error(w, `{"error":"bad-parameter"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		var next string
		if len(f.tasks) > 0 {
			next, f.tasks = f.tasks[0], f.tasks[1:]
		}
		f.mu.Unlock()
		if next == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, next)
	case strings.HasSuffix(r.URL.Path, "/heartbeat"):
		if string(body) != `{"workerId":"w1"}` {
			http.Error(w, `{"error":"bad-parameter"}`, http.StatusBadRequest)
			return
		}
		if strings.Contains(r.URL.Path, f.lost) {
			http.Error(w, `{"error":"lease-lost"}`, http.StatusConflict)
			return
		}
		io.WriteString(w, `{"leaseSeconds":30}`)
	default:
		io.WriteString(w, `{}`)
	}
}

func TestCalculateDiscountWorker(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	task := func(id string, input string) string {
		return fmt.Sprintf(`{"taskId":"%s","activity":"CalculateDiscount","input":%s,"attempt":2,"instanceId":"b1","workflow":"ReserveTicketWorker","stepId":"discount","timeoutSeconds":30,"leaseSeconds":30}`, id, input)
	}
	f := &fakeServer{t: t, lost: "tok-lost", tasks: []string{
		"", // one empty poll first
		task("tok-1", `"user1"`),
		task("tok-2", `{"user":"x"}`),
		task("tok-lost", `"user1"`),
		task("tok_3-A", `"a\"b"`),
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "calculate-discount.sh")
	cmd.Env = append(os.Environ(), "CAIRN_URL="+srv.URL+"/", "CAIRN_API_KEY=k1", "WORKER_ID=w1", "WAIT_SECONDS=1", "MAX_TASKS=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("worker: %v\n%s", err, out)
	}

	var got []string
	for _, c := range f.calls {
		if !strings.Contains(c, "/poll ") {
			got = append(got, c)
		}
	}
	want := []string{
		`POST /v1/tasks/tok-1/heartbeat {"workerId":"w1"}`,
		`POST /v1/tasks/tok-1/complete {"result":20}`,
		`POST /v1/tasks/tok-2/heartbeat {"workerId":"w1"}`,
		`POST /v1/tasks/tok-2/fail {"error":{"type":"InvalidInput","message":"CalculateDiscount wants a user id as a JSON string","retryable":false}}`,
		`POST /v1/tasks/tok-lost/heartbeat {"workerId":"w1"}`,
		`POST /v1/tasks/tok_3-A/heartbeat {"workerId":"w1"}`,
		`POST /v1/tasks/tok_3-A/complete {"result":10}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out)
	}
}
