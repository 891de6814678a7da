package httpapi_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
)

// scheduleClock is the API's clock in the schedule tests.
type scheduleClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *scheduleClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

const nightlyYAML = `name: Nightly
schedules:
  - id: nightly
    cron: "0 2 * * *"
    timezone: Europe/Stockholm
    input: {at: "${ schedule.time }"}
steps:
  - wait: {event: done}
`

// TestSchedulesHTTP: list, get with the next runs, pause, resume and
// trigger a schedule over HTTP; 404 unknown-schedule; a second workflow
// with the same schedule id is refused at deployment, located.
func TestSchedulesHTTP(t *testing.T) {
	clock := &scheduleClock{t: time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC)}
	e := newEnvWith(t, redistest.StartOpts{}, func(c *httpapi.Config) { c.Clock = clock.now })
	e.expect(e.deploy("Nightly", nightlyYAML), http.StatusCreated, "deploy")

	list := e.expect(e.do("GET", "/v1/schedules", "", nil), http.StatusOK, "list").json(t)
	all := list["schedules"].([]any)
	if len(all) != 1 {
		t.Fatalf("schedules: %v", list)
	}
	s := all[0].(map[string]any)
	if s["id"] != "nightly" || s["workflow"] != "Nightly" || s["cron"] != "0 2 * * *" || s["timezone"] != "Europe/Stockholm" ||
		s["overlap"] != "skip" || s["paused"] != false || s["nextRun"] != "2026-03-28T01:00:00Z" || s["lastRun"] != nil || s["lastInstanceId"] != "" {
		t.Errorf("listed: %v", s)
	}

	got := e.expect(e.do("GET", "/v1/schedules/nightly", "", nil), http.StatusOK, "get").json(t)
	runs := got["nextRuns"].([]any)
	want := []string{"2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z", "2026-04-01T00:00:00Z"}
	if len(runs) != len(want) {
		t.Fatalf("nextRuns %v", runs)
	}
	for i := range want {
		if runs[i] != want[i] {
			t.Errorf("nextRuns[%d] = %v, want %s", i, runs[i], want[i])
		}
	}

	paused := e.expect(e.do("POST", "/v1/schedules/nightly/pause", "", nil), http.StatusAccepted, "pause").json(t)
	if paused["paused"] != true || paused["nextRun"] != nil {
		t.Errorf("after pause: %v", paused)
	}
	// Triggered while paused: it starts, with the trigger's tick as id.
	tr := e.expect(e.do("POST", "/v1/schedules/nightly/trigger", "", nil), http.StatusAccepted, "trigger").json(t)
	if tr["outcome"] != "started" || tr["instanceId"] != "nightly-20260327T120000Z" {
		t.Errorf("trigger: %v", tr)
	}
	st, err := e.store.FetchStatus(t.Context(), "nightly-20260327T120000Z")
	if err != nil || string(st.Input) != `{"at":"2026-03-27T12:00:00Z"}` || st.Name != "Nightly" {
		t.Fatalf("triggered instance: %+v %v", st, err)
	}
	// The instance still runs (no engine here): overlap skip skips the next.
	clock.t = clock.t.Add(time.Second)
	tr = e.expect(e.do("POST", "/v1/schedules/nightly/trigger", "", nil), http.StatusAccepted, "trigger").json(t)
	if tr["outcome"] != "skipped" {
		t.Errorf("second trigger: %v", tr)
	}
	resumed := e.expect(e.do("POST", "/v1/schedules/nightly/resume", "", nil), http.StatusAccepted, "resume").json(t)
	if resumed["paused"] != false || resumed["nextRun"] != "2026-03-28T01:00:00Z" || resumed["lastInstanceId"] != "nightly-20260327T120000Z" || resumed["lastRun"] != "2026-03-27T12:00:00Z" {
		t.Errorf("after resume: %v", resumed)
	}

	for _, path := range []string{"/v1/schedules/nope", "/v1/schedules/nope/pause", "/v1/schedules/nope/resume", "/v1/schedules/nope/trigger"} {
		method := "POST"
		if path == "/v1/schedules/nope" {
			method = "GET"
		}
		r := e.expect(e.do(method, path, "", nil), http.StatusNotFound, path).json(t)
		if r["error"] != "unknown-schedule" || r["message"] == "" {
			t.Errorf("%s: %v", path, r)
		}
	}

	// Another workflow may not take the id.
	r := e.expect(e.deploy("Other", "name: Other\nschedules:\n  - id: nightly\n    every: 1h\nsteps:\n  - return: 1\n"), http.StatusUnprocessableEntity, "duplicate").json(t)
	issues, _ := r["issues"].([]any)
	if r["error"] != "invalid-workflow" || len(issues) != 1 {
		t.Fatalf("duplicate id: %v", r)
	}
	is := issues[0].(map[string]any)
	if is["code"] != "duplicate-schedule" || is["pos"].(map[string]any)["line"] != float64(3) || is["pos"].(map[string]any)["col"] != float64(9) {
		t.Errorf("issue %v", is)
	}
	// Removing the schedule from the file stops it.
	e.expect(e.deploy("Nightly", "name: Nightly\nsteps:\n  - return: 1\n"), http.StatusOK, "redeploy")
	list = e.expect(e.do("GET", "/v1/schedules", "", nil), http.StatusOK, "list").json(t)
	if n := len(list["schedules"].([]any)); n != 0 {
		t.Errorf("%d schedules after the removal", n)
	}
}
