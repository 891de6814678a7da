package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

type bulkAnswer struct {
	Operation         string `json:"operation"`
	DryRun            bool   `json:"dryRun"`
	Matched           int64  `json:"matched"`
	Applied           int    `json:"applied"`
	Skipped           int    `json:"skipped"`
	ContinuationToken string `json:"continuationToken"`
}

func (e *env) bulk(op, query string) bulkAnswer {
	e.t.Helper()
	r := e.expect(e.do("POST", "/v1/bulk/"+op+"?"+query, "", nil), 200, "bulk "+op+"?"+query)
	var a bulkAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		e.t.Fatalf("bulk %s: %v: %s", op, err, r.body)
	}
	if a.ContinuationToken != r.header.Get("x-ms-continuation-token") {
		e.t.Fatalf("bulk %s: token %q in the body, %q in the header", op, a.ContinuationToken, r.header.Get("x-ms-continuation-token"))
	}
	return a
}

// bulkAll runs op page by page to the end and sums the pages.
func (e *env) bulkAll(op, query string) (pages int, sum bulkAnswer) {
	e.t.Helper()
	token := ""
	for {
		q := query
		if token != "" {
			q += "&continuationToken=" + token
		}
		a := e.bulk(op, q)
		pages++
		sum.Matched += a.Matched
		sum.Applied += a.Applied
		sum.Skipped += a.Skipped
		if token = a.ContinuationToken; token == "" {
			return pages, sum
		}
	}
}

// TestBulkTerminateByWorkflow: 2,000 instances of one workflow among 300
// of another: a dry run counts them, the terminate goes page by page,
// terminates exactly those and leaves the others running; then a bulk
// purge deletes exactly the terminated ones.
func TestBulkTerminateByWorkflow(t *testing.T) {
	e := newEnv(t)
	defs := map[string]*dsl.Workflow{}
	for _, name := range []string{"Doomed", "Kept"} {
		e.expect(e.deploy(name, fmt.Sprintf(countedYAML, name)), 201, "deploy "+name)
		def, err := dsl.Parse(name+".yaml", fmt.Appendf(nil, countedYAML, name))
		if err != nil {
			t.Fatal(err)
		}
		defs[name] = def
	}
	const doomed, kept = 2000, 300
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < doomed+kept; i += 8 {
				name, id := "Doomed", fmt.Sprintf("d%04d", i)
				if i >= doomed {
					name, id = "Kept", fmt.Sprintf("k%04d", i-doomed)
				}
				ni := interpreter.Instantiate(defs[name], interpreter.InstanceID(id), nil, time.Now())
				if err := e.store.CreateInstance(context.Background(), ni); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.startEngine()
	waitFor := func(want map[string]map[string]int64) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			got := e.stats("").byWorkflow()
			if sameNested(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/v1/stats = %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(map[string]map[string]int64{"Doomed": {"Running": doomed}, "Kept": {"Running": kept}})

	// Dry runs: from the counts, and page by page where a filter needs the
	// instances (an id prefix).
	if a := e.bulk("terminate", "workflow=Doomed&dryRun=true"); !a.DryRun || a.Matched != doomed || a.Applied != 0 || a.ContinuationToken != "" {
		t.Fatalf("dry run: %+v, want %d matched", a, doomed)
	}
	if _, a := e.bulkAll("terminate", "workflow=Doomed&instanceIdPrefix=d1&dryRun=true&top=300"); a.Matched != 1000 || a.Applied != 0 {
		t.Fatalf("dry run with a prefix: %+v, want 1000 matched", a)
	}
	if a := e.bulk("resume", "workflow=Doomed&dryRun=true"); a.Matched != 0 {
		t.Fatalf("resume dry run: %+v, want none (none is suspended)", a)
	}
	waitFor(map[string]map[string]int64{"Doomed": {"Running": doomed}, "Kept": {"Running": kept}})

	pages, a := e.bulkAll("terminate", "workflow=Doomed&top=500&reason=cleanup")
	if a.Applied != doomed || a.Matched != doomed || a.Skipped != 0 || pages < 4 {
		t.Fatalf("terminate: %+v in %d pages, want %d applied in at least 4", a, pages, doomed)
	}
	waitFor(map[string]map[string]int64{"Doomed": {"Terminated": doomed}, "Kept": {"Running": kept}})
	for wf, want := range map[string]map[string]int64{"Doomed": {"Terminated": doomed}, "Kept": {"Running": kept}} {
		if got := e.listedByStatus(wf); !maps.Equal(got, want) {
			t.Fatalf("%s lists %v, want %v", wf, got, want)
		}
	}
	// Again: nothing left to terminate.
	if _, a := e.bulkAll("terminate", "workflow=Doomed"); a.Matched != 0 || a.Applied != 0 {
		t.Fatalf("a second terminate: %+v, want nothing", a)
	}

	if _, a := e.bulkAll("purge", "workflow=Doomed&runtimeStatus=Terminated"); a.Applied != doomed {
		t.Fatalf("purge: %+v, want %d", a, doomed)
	}
	if _, a := e.bulkAll("purge", "workflow=Kept"); a.Matched != 0 {
		t.Fatalf("purging Kept (all running): %+v, want nothing", a)
	}
	waitFor(map[string]map[string]int64{"Kept": {"Running": kept}})

	for q, code := range map[string]int{
		"/v1/bulk/terminate":                                400, // no filter
		"/v1/bulk/resume?runtimeStatus=Running":             400, // resume applies to none of these
		"/v1/bulk/terminate?workflow=1bad":                  400,
		"/v1/bulk/terminate?workflow=Kept&top=5000":         400,
		"/v1/bulk/explode?workflow=Kept":                    404,
		"/v1/bulk/terminate?workflow=Kept&dryRun=sometimes": 400,
	} {
		if r := e.do("POST", q, "", nil); r.code != code {
			t.Errorf("POST %s: %d %s, want %d", q, r.code, r.body, code)
		} else if code == 400 && q == "/v1/bulk/terminate" && !strings.Contains(string(r.body), "filter-required") {
			t.Errorf("POST %s: %s, want filter-required", q, r.body)
		}
	}
}
