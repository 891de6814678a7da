package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestSchedulesCommand: each subcommand calls its route and prints the
// answer; an unknown schedule exits 1 with the API's message; bad usage
// exits 2.
func TestSchedulesCommand(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/schedules/nope"):
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"unknown-schedule","message":"no deployed workflow has a schedule \"nope\""}`))
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"id":"nightly","paused":true}`))
		default:
			_, _ = w.Write([]byte(`{"schedules":[{"id":"nightly"}]}`))
		}
	}))
	defer srv.Close()
	env := []string{"CAIRN_SERVER=" + srv.URL}
	for _, args := range [][]string{{"list"}, {"get", "nightly"}, {"pause", "nightly"}, {"resume", "nightly"}, {"trigger", "nightly"}} {
		r := cairn(t, env, append([]string{"schedules"}, args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "nightly") {
			t.Errorf("cairn schedules %v: %s", args, r)
		}
	}
	want := []string{"GET /v1/schedules", "GET /v1/schedules/nightly", "POST /v1/schedules/nightly/pause", "POST /v1/schedules/nightly/resume", "POST /v1/schedules/nightly/trigger"}
	mu.Lock()
	got := strings.Join(calls, ",")
	mu.Unlock()
	if got != strings.Join(want, ",") {
		t.Errorf("calls %s, want %v", got, want)
	}
	if r := cairn(t, env, "schedules", "pause", "nope"); r.code != 1 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("unknown schedule: %s", r)
	}
	for _, args := range [][]string{{}, {"frob"}, {"get"}, {"list", "x"}, {"trigger", "a", "b"}} {
		if r := cairn(t, env, append([]string{"schedules"}, args...)...); r.code != 2 {
			t.Errorf("cairn schedules %v: want exit 2, got %s", args, r)
		}
	}
}
