package client

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// TestBulkFollowsPages: Bulk sends the filter on every page, follows the
// continuation token and sums the pages.
func TestBulkFollowsPages(t *testing.T) {
	var pages []string
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/bulk/terminate" || q.Get("workflow") != "W" ||
			q.Get("runtimeStatus") != "Running,Pending" || q.Get("reason") != "why" || q.Get("dryRun") != "" {
			t.Errorf("%s %s", r.Method, r.URL)
		}
		tok := r.Header.Get("x-ms-continuation-token")
		pages = append(pages, tok)
		switch tok {
		case "":
			fmt.Fprint(w, `{"operation":"terminate","matched":3,"applied":2,"skipped":1,"continuationToken":"p2"}`)
		case "p2":
			fmt.Fprint(w, `{"operation":"terminate","matched":1,"applied":1,"skipped":0}`)
		default:
			t.Errorf("token %q", tok)
		}
	})
	var seen int
	sum, err := c.Bulk(context.Background(), "terminate",
		BulkQuery{Workflow: "W", Statuses: []string{"Running", "Pending"}, Reason: "why"},
		func(BulkResult) { seen++ })
	if err != nil {
		t.Fatal(err)
	}
	want := BulkResult{Operation: "terminate", Matched: 4, Applied: 3, Skipped: 1, Pages: 2}
	if sum != want || seen != 2 || len(pages) != 2 {
		t.Fatalf("sum %+v (pages seen %d, requests %v), want %+v", sum, seen, pages, want)
	}
}
