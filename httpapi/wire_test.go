package httpapi_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
)

// TestWorkflowJSONPinned pins the bytes of GET /v1/workflows/{name} and
// GET /v1/workflows (docs/api.md, openapi.json's Workflow and WorkflowInfo):
// the API writes its own wire types, so a change to the store's values must
// not show here.
func TestWorkflowJSONPinned(t *testing.T) {
	var now atomic.Pointer[time.Time]
	at := func(s string) {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		now.Store(&tm)
	}
	e := newEnvWith(t, redistest.StartOpts{}, func(c *httpapi.Config) { c.Clock = func() time.Time { return *now.Load() } })
	v1 := "name: Hello\nsteps:\n  - return: 1\n"
	v2 := "name: Hello\nsteps:\n  - return: 2\n"
	at("2026-01-02T03:04:05.678Z")
	h1 := e.expect(e.deploy("Hello", v1), 201, "v1").json(t)["hash"].(string)
	at("2026-01-02T03:04:06Z")
	h2 := e.expect(e.deploy("Hello", v2), 200, "v2").json(t)["hash"].(string)

	versions := `[{"hash":"` + h1 + `","createdTime":"2026-01-02T03:04:05.678Z"},{"hash":"` + h2 + `","createdTime":"2026-01-02T03:04:06Z"}]`
	want := `{"name":"Hello","hash":"` + h2 + `","latestHash":"` + h2 + `","source":"name: Hello\nsteps:\n  - return: 2\n","versions":` + versions + `}`
	if r := e.expect(e.do("GET", "/v1/workflows/Hello", "", nil), 200, "get"); string(r.body) != want {
		t.Errorf("GET /v1/workflows/Hello:\n got %s\nwant %s", r.body, want)
	}
	want = `{"workflows":[{"name":"Hello","latestHash":"` + h2 + `","versions":` + versions + `}]}`
	if r := e.expect(e.do("GET", "/v1/workflows", "", nil), 200, "list"); string(r.body) != want {
		t.Errorf("GET /v1/workflows:\n got %s\nwant %s", r.body, want)
	}
}
