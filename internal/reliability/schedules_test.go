package reliability

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
)

// TestScheduleExactlyOnce: a schedule of every 1s runs for 20 s while one
// API process and two engine processes share one Redis (and, below, a
// Redis Cluster): every tick between the first and the last is started
// exactly once, under its id <schedule id>-<tick in UTC>, none missed.
func TestScheduleExactlyOnce(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	runScheduleOnce(t, rs.URL())
}

func TestScheduleExactlyOnceOnCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, redistest.ClusterOpts{})
	urls := make([]string, 0, len(cl.Addrs()))
	for _, a := range cl.Addrs() {
		urls = append(urls, "redis://"+a)
	}
	runScheduleOnce(t, strings.Join(urls, ","))
}

func runScheduleOnce(t *testing.T, redisURL string) {
	book := &logBook{}
	wfs := writeWorkflows(t, map[string]string{"Tick": `
name: Tick
schedules:
  - id: every-second
    every: 1s
    input: {at: "${ schedule.time }"}
steps:
  - return: ${ input.at }
`})
	api := startCairn(t, book, serveOpts{redis: redisURL, role: "api", workflows: wfs})
	startCairn(t, book, serveOpts{redis: redisURL, role: "engine"})
	startCairn(t, book, serveOpts{redis: redisURL, role: "engine"})
	c := newClient(api.url, "")
	time.Sleep(20 * time.Second)

	// Every instance of Tick, page by page.
	var ids []string
	token := ""
	for {
		r, err := c.do("GET", "/runtime/webhooks/durabletask/instances?workflow=Tick&top=1000", "", nil, "x-ms-continuation-token", token)
		if err != nil || r.code != http.StatusOK {
			t.Fatalf("list: %v %d %s", err, r.code, r.body)
		}
		var page []struct{ InstanceID string }
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			ids = append(ids, p.InstanceID)
		}
		if token = r.header.Get("x-ms-continuation-token"); token == "" {
			break
		}
	}
	slices.Sort(ids)
	if len(ids) < 15 {
		t.Fatalf("%d ticks started in 20 s of a 1 s schedule: %v\n%s", len(ids), ids, book)
	}
	var ticks []time.Time
	for _, id := range ids {
		at, err := time.Parse("20060102T150405Z", strings.TrimPrefix(id, "every-second-"))
		if err != nil || !strings.HasPrefix(id, "every-second-") {
			t.Fatalf("instance id %q is not every-second-<tick in UTC>", id)
		}
		ticks = append(ticks, at)
	}
	for i := 1; i < len(ticks); i++ {
		if d := ticks[i].Sub(ticks[i-1]); d != time.Second {
			t.Errorf("ticks %s and %s are %s apart: a tick was missed or doubled", ids[i-1], ids[i], d)
		}
	}
	// A tick's instance ran on that tick's input.
	k := len(ids) - 2 // the newest may still be running
	r, err := c.do("GET", "/runtime/webhooks/durabletask/instances/"+url.PathEscape(ids[k]), "", nil)
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("status of %s: %v %d %s", ids[k], err, r.code, r.body)
	}
	var st struct{ Output string }
	_ = json.Unmarshal(r.body, &st)
	if at, err := time.Parse(time.RFC3339Nano, st.Output); err != nil || !at.Equal(ticks[k]) {
		t.Errorf("%s ran on schedule.time %q, want its tick %s", ids[k], st.Output, ticks[k].Format(time.RFC3339))
	}
	book.check(t)
	t.Logf("%d ticks started once each, %s to %s", len(ids), ids[0], ids[len(ids)-1])
}
