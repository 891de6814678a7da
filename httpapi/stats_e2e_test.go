package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/metrics"
	"github.com/cairnhq/cairn/redisstore"
)

// countedYAML waits for an event "go", then fails or completes as it says.
const countedYAML = `name: %s
steps:
  - wait: {event: go, result: what}
  - if: what == "fail"
    fail: {error: Boom, message: asked to}
  - return: ${ what }
`

type statsBody struct {
	Workflows []struct {
		Name   string           `json:"name"`
		Counts map[string]int64 `json:"counts"`
		Total  int64            `json:"total"`
	} `json:"workflows"`
	Total     map[string]int64 `json:"total"`
	Instances int64            `json:"instances"`
}

// byWorkflow is the stats' non-zero counts per workflow.
func (b statsBody) byWorkflow() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, w := range b.Workflows {
		for st, n := range w.Counts {
			if n != 0 {
				if out[w.Name] == nil {
					out[w.Name] = map[string]int64{}
				}
				out[w.Name][st] = n
			}
		}
	}
	return out
}

func (e *env) stats(query string) statsBody {
	e.t.Helper()
	r := e.expect(e.do("GET", "/v1/stats"+query, "", nil), 200, "GET /v1/stats"+query)
	var b statsBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		e.t.Fatalf("GET /v1/stats: %v: %s", err, r.body)
	}
	return b
}

// listedByStatus lists every instance of workflow wf (all pages) and
// counts them by runtime status, checking each is of wf.
func (e *env) listedByStatus(wf string) map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	token := ""
	for {
		path := df + "/instances?top=3&workflow=" + wf
		if token != "" {
			path += "&continuationToken=" + token
		}
		r := e.expect(e.do("GET", path, "", nil), 200, "GET "+path)
		var page []struct {
			Name          string `json:"name"`
			RuntimeStatus string `json:"runtimeStatus"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			e.t.Fatalf("%s: %v: %s", path, err, r.body)
		}
		for _, p := range page {
			if p.Name != wf {
				e.t.Fatalf("?workflow=%s lists an instance of %s", wf, p.Name)
			}
			out[p.RuntimeStatus]++
		}
		if token = r.header.Get("x-ms-continuation-token"); token == "" {
			return out
		}
	}
}

// process is a second `cairn serve` on the same Redis: its own client,
// store, and API with metrics.
func (e *env) process() *httptest.Server {
	e.t.Helper()
	rdb := servedClient(e.redis.Addr())
	e.t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.Options{Partitions: 4})
	if err := store.Init(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	m := metrics.New(metrics.Options{Counts: store.CountsByName})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Backend: store, Metrics: m}))
	e.t.Cleanup(srv.Close)
	return srv
}

// instancesGauge scrapes /metrics and returns cairn_instances' non-zero
// samples: workflow → status → value.
func instancesGauge(t *testing.T, url string) map[string]map[string]int64 {
	t.Helper()
	code, r := call(t, "GET", url+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, r)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]map[string]int64{}
	f := fams["cairn_instances"]
	if f == nil {
		t.Fatalf("/metrics has no cairn_instances:\n%s", r)
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if v := int64(m.GetGauge().GetValue()); v != 0 {
			if out[labels["workflow"]] == nil {
				out[labels["workflow"]] = map[string]int64{}
			}
			out[labels["workflow"]][labels["status"]] = v
		}
	}
	return out
}

func sameNested(a, b map[string]map[string]int64) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]int64) bool { return maps.Equal(x, y) })
}

// TestStatsAndWorkflowFilter: GET /v1/stats and ?workflow= agree with the
// instances created (through two processes), as they start, complete,
// fail and are terminated; cairn_instances says the same on every
// process's /metrics.
func TestStatsAndWorkflowFilter(t *testing.T) {
	e := newEnv(t)
	other := e.process()
	for _, name := range []string{"Counted", "Other"} {
		e.expect(e.deploy(name, fmt.Sprintf(countedYAML, name)), 201, "deploy "+name)
	}
	start := func(base, name, id string) {
		t.Helper()
		if code, body := call(t, "POST", base+df+"/orchestrators/"+name+"/"+id, "null"); code != 202 {
			t.Fatalf("start %s on %s: %d %s", id, base, code, body)
		}
	}
	for i := range 7 {
		start([]string{e.api.URL, other.URL}[i%2], "Counted", fmt.Sprintf("c%d", i))
	}
	for i := range 4 {
		start(other.URL, "Other", fmt.Sprintf("o%d", i))
	}
	if got := e.stats("").byWorkflow(); !sameNested(got, map[string]map[string]int64{"Counted": {"Pending": 7}, "Other": {"Pending": 4}}) {
		t.Fatalf("before the engine runs, /v1/stats = %v", got)
	}
	e.startEngine()
	waitStats := func(want map[string]map[string]int64) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			b := e.stats("")
			got := b.byWorkflow()
			if sameNested(got, want) {
				var total int64
				for wf, by := range want {
					if l := e.listedByStatus(wf); !maps.Equal(l, by) {
						t.Fatalf("/v1/stats says %s has %v, ?workflow=%s lists %v", wf, by, wf, l)
					}
					for _, n := range by {
						total += n
					}
				}
				if b.Instances != total {
					t.Fatalf("instances = %d, want %d", b.Instances, total)
				}
				// The other process (which runs no engine) counts the same.
				if g := instancesGauge(t, other.URL); !sameNested(g, want) {
					t.Fatalf("cairn_instances on the other process = %v, want %v", g, want)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/v1/stats = %v, want %v", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitStats(map[string]map[string]int64{"Counted": {"Running": 7}, "Other": {"Running": 4}})

	raise := func(id, what string) {
		t.Helper()
		e.expect(e.do("POST", df+"/instances/"+id+"/raiseEvent/go", "application/json", []byte(`"`+what+`"`)), 202, "raise "+id)
	}
	raise("c0", "done")
	raise("c1", "done")
	raise("c2", "done")
	raise("o0", "fail")
	e.expect(e.do("POST", df+"/instances/c3/terminate?reason=test", "", nil), 202, "terminate c3")
	e.expect(e.do("POST", df+"/instances/o1/suspend", "", nil), 202, "suspend o1")
	waitStats(map[string]map[string]int64{
		"Counted": {"Running": 3, "Completed": 3, "Terminated": 1},
		"Other":   {"Running": 2, "Failed": 1, "Suspended": 1},
	})

	// One workflow's stats: every status listed, zeros included.
	one := e.stats("?workflow=Other")
	if len(one.Workflows) != 1 || one.Workflows[0].Name != "Other" || one.Workflows[0].Total != 4 || one.Instances != 4 {
		t.Errorf("?workflow=Other: %+v", one)
	}
	want := map[string]int64{"Pending": 0, "Running": 2, "Suspended": 1, "Completed": 0, "Failed": 1, "Terminated": 0}
	if !maps.Equal(one.Total, want) || !maps.Equal(one.Workflows[0].Counts, want) {
		t.Errorf("?workflow=Other counts %v, total %v; want %v", one.Workflows[0].Counts, one.Total, want)
	}
	if none := e.stats("?workflow=Nobody"); none.Instances != 0 || len(none.Workflows) != 1 || none.Workflows[0].Counts["Running"] != 0 {
		t.Errorf("?workflow=Nobody: %+v", none)
	}
	// A status filter with the workflow filter.
	r := e.expect(e.do("GET", df+"/instances?workflow=Counted&runtimeStatus=Completed,Terminated", "", nil), 200, "list")
	var page []map[string]any
	_ = json.Unmarshal(r.body, &page)
	if len(page) != 4 {
		t.Errorf("Counted, Completed or Terminated: %d listed, want 4", len(page))
	}
	for _, q := range []string{"/v1/stats?workflow=1bad", df + "/instances?workflow=", df + "/instances?workflow=a%20b"} {
		if r := e.do("GET", q, "", nil); r.code != 400 || !strings.Contains(string(r.body), "bad-parameter") {
			t.Errorf("GET %s: %d %s, want 400 bad-parameter", q, r.code, r.body)
		}
	}
}

// TestStatsNeedsCounts: a Backend that cannot count answers 501.
func TestStatsNeedsCounts(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Backend: noCounts{e.store}}))
	defer srv.Close()
	if code, body := call(t, "GET", srv.URL+"/v1/stats", ""); code != 501 || !strings.Contains(body, "not-implemented") {
		t.Fatalf("GET /v1/stats without counts: %d %s, want 501 not-implemented", code, body)
	}
}

// noCounts hides the store's CountInstances.
type noCounts struct{ httpapi.Backend }

// call makes one request with a JSON body ("" = none) and returns the
// status code and body.
func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
