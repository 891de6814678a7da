package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTest(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Client{Server: srv.URL, Key: "k1"}
}

func TestStartSendsInputKeyAndPath(t *testing.T) {
	var got struct{ method, path, key, ctype, body string }
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.path, got.key, got.ctype, got.body = r.Method, r.URL.EscapedPath(), r.Header.Get("x-functions-key"), r.Header.Get("Content-Type"), string(b)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"id":"a b"}`)
	})
	out, err := c.Start(context.Background(), "ReserveTicket", "a b", []byte(`"user1"`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"id":"a b"}` {
		t.Fatalf("out = %s", out)
	}
	want := "POST /runtime/webhooks/durabletask/orchestrators/ReserveTicket/a%20b k1 application/json \"user1\""
	if s := strings.Join([]string{got.method, got.path, got.key, got.ctype, got.body}, " "); s != want {
		t.Fatalf("request = %s\nwant      %s", s, want)
	}
}

func TestAPIErrorCarriesCodeAndMessage(t *testing.T) {
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"instance-not-found","message":"no instance x"}`)
	})
	_, err := c.Status(context.Background(), "x", false)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Code != "instance-not-found" || ae.Message != "no instance x" {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "404 Not Found: instance-not-found: no instance x") {
		t.Fatalf("message = %q", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c := &Client{Server: srv.URL}
	if err := c.Terminate(context.Background(), "x", "why"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v", err)
	}
}

func TestListFollowsContinuationToken(t *testing.T) {
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("runtimeStatus") != "Running,Pending" {
			t.Errorf("runtimeStatus = %q", r.URL.Query().Get("runtimeStatus"))
		}
		if r.URL.Query().Get("workflow") != "ReserveTicket" {
			t.Errorf("workflow = %q", r.URL.Query().Get("workflow"))
		}
		switch r.Header.Get("x-ms-continuation-token") {
		case "":
			w.Header().Set("x-ms-continuation-token", "p2")
			fmt.Fprint(w, `[{"instanceId":"a"},{"instanceId":"b"}]`)
		case "p2":
			fmt.Fprint(w, `[{"instanceId":"c"}]`)
		default:
			t.Errorf("token %q", r.Header.Get("x-ms-continuation-token"))
		}
	})
	out, err := c.List(context.Background(), ListQuery{Statuses: []string{"Running", "Pending"}, Workflow: "ReserveTicket"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []struct{ InstanceID string }
	if err := json.Unmarshal(out, &ids); err != nil || len(ids) != 3 || ids[2].InstanceID != "c" {
		t.Fatalf("out = %s (%v)", out, err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              defaultPoll,
		"5":                             5 * time.Second,
		"0":                             minPoll,
		"junk":                          defaultPoll,
		"100000":                        maxPoll,
		"Thu, 01 Jan 2026 00:00:03 GMT": 3 * time.Second,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// fakeInstance is an instance whose status the test moves along.
type fakeInstance struct {
	mu     sync.Mutex
	rev    int64
	status string
	custom string
	polls  int
}

func (f *fakeInstance) set(status, custom string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	f.status, f.custom = status, custom
}

func (f *fakeInstance) doc() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf(`{"instanceId":"i1","runtimeStatus":%q,"customStatus":%s,"revision":%d}`, f.status, f.custom, f.rev), Terminal(f.status)
}

func (f *fakeInstance) statusHandler(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.polls++
	f.mu.Unlock()
	d, done := f.doc()
	if !done {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusAccepted)
	}
	fmt.Fprint(w, d)
}

func TestWaitFollowsStream(t *testing.T) {
	f := &fakeInstance{}
	f.set("Running", "null")
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/events") {
			f.statusHandler(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		send := func() {
			d, _ := f.doc()
			fmt.Fprintf(w, "event: status\ndata: %s\n\n", d)
			fl.Flush()
		}
		send()
		fmt.Fprint(w, ": keep-alive\n\n")
		f.set("Running", `{"discount": 20}`)
		send()
		send() // a repeat of the same revision is dropped
		f.set("Running", `{"discount":20}`)
		send() // same value, new revision: not reported again
		f.set("Running", `"almost"`)
		send()
		f.set("Completed", `"done"`)
		send()
	})
	var seen []string
	out, err := c.Wait(context.Background(), "i1", func(cs json.RawMessage) { seen = append(seen, string(cs)) })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, " "); got != `{"discount":20} "almost" "done"` {
		t.Fatalf("custom statuses = %s", got)
	}
	if !strings.Contains(string(out), `"Completed"`) {
		t.Fatalf("final = %s", out)
	}
	if f.polls != 1 {
		t.Fatalf("status was read %d times, want once (the final document)", f.polls)
	}
}

func TestWaitPollsWithoutStream(t *testing.T) {
	f := &fakeInstance{}
	f.set("Pending", "null")
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			http.NotFound(w, r)
			return
		}
		f.statusHandler(w, r)
		switch f.polls {
		case 1:
			f.set("Running", `"one"`)
		case 2:
			f.set("Running", `"two"`)
		case 3:
			f.set("Failed", `"two"`)
		}
	})
	var seen []string
	out, err := c.Wait(context.Background(), "i1", func(cs json.RawMessage) { seen = append(seen, string(cs)) })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, " "); got != `"one" "two"` {
		t.Fatalf("custom statuses = %s", got)
	}
	if !strings.Contains(string(out), `"Failed"`) || f.polls != 4 {
		t.Fatalf("final = %s after %d polls", out, f.polls)
	}
}

func TestWaitFallsBackWhenStreamBreaks(t *testing.T) {
	f := &fakeInstance{}
	f.set("Running", `"one"`)
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "text/event-stream")
			d, _ := f.doc()
			fmt.Fprintf(w, "event: status\ndata: %s\n\n", d)
			f.set("Completed", `"done"`)
			return // the stream ends before the instance does
		}
		f.statusHandler(w, r)
	})
	var seen []string
	out, err := c.Wait(context.Background(), "i1", func(cs json.RawMessage) { seen = append(seen, string(cs)) })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, " "); got != `"one" "done"` || !strings.Contains(string(out), "Completed") {
		t.Fatalf("custom statuses = %s, final = %s", got, out)
	}
}

func TestWaitUnknownInstance(t *testing.T) {
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"not-found","message":"no instance i1"}`)
	})
	_, err := c.Wait(context.Background(), "i1", nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitHonorsContext(t *testing.T) {
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: status\ndata: {\"runtimeStatus\":\"Running\",\"revision\":1}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"runtimeStatus":"Running"}`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx, "i1", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitRidesOutAServerRestart(t *testing.T) {
	var mu sync.Mutex
	polls := 0
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		switch {
		case n == 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"runtimeStatus":"Running"}`)
		case n < 4:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"unavailable","message":"store down"}`)
		default:
			fmt.Fprint(w, `{"runtimeStatus":"Completed"}`)
		}
	})
	out, err := c.Wait(context.Background(), "i1", nil)
	if err != nil || !strings.Contains(string(out), "Completed") {
		t.Fatalf("out = %s, err = %v", out, err)
	}
}

func TestWaitFailsAtOnceWhenTheServerNeverAnswered(t *testing.T) {
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	start := time.Now()
	if _, err := c.Wait(context.Background(), "i1", nil); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
}
