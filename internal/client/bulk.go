package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// BulkQuery selects the instances of a bulk operation (at least one field
// must be set; the server refuses an empty filter).
type BulkQuery struct {
	Workflow    string
	Statuses    []string
	CreatedFrom string // RFC 3339; "" = unbounded
	CreatedTo   string
	Prefix      string
	Reason      string // recorded with terminate, suspend and resume
	DryRun      bool
	PageSize    int // 0 = the server's (1000)
}

// BulkResult is what one page did, or the sum of all pages.
type BulkResult struct {
	Operation string `json:"operation"`
	DryRun    bool   `json:"dryRun"`
	Matched   int64  `json:"matched"`
	Applied   int64  `json:"applied"`
	Skipped   int64  `json:"skipped"`
	Pages     int    `json:"pages,omitempty"`
	// ContinuationToken is the next page's (in a page's result only).
	ContinuationToken string `json:"continuationToken,omitempty"`
}

// Bulk runs the bulk operation op (terminate, suspend, resume or purge)
// page by page to the end, calling page (when set) after each, and returns
// the sum.
func (c *Client) Bulk(ctx context.Context, op string, q BulkQuery, page func(BulkResult)) (BulkResult, error) {
	sum := BulkResult{Operation: op, DryRun: q.DryRun}
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("workflow", q.Workflow)
	set("runtimeStatus", strings.Join(q.Statuses, ","))
	set("createdTimeFrom", q.CreatedFrom)
	set("createdTimeTo", q.CreatedTo)
	set("instanceIdPrefix", q.Prefix)
	set("reason", q.Reason)
	if q.DryRun {
		v.Set("dryRun", "true")
	}
	if q.PageSize > 0 {
		v.Set("top", fmt.Sprint(q.PageSize))
	}
	token := ""
	for {
		body, _, err := c.doWith(ctx, http.MethodPost, "/v1/bulk/"+url.PathEscape(op), v, nil,
			map[string]string{"x-ms-continuation-token": token}, http.StatusOK)
		if err != nil {
			return sum, err
		}
		var r BulkResult
		if err := json.Unmarshal(body, &r); err != nil {
			return sum, fmt.Errorf("bulk %s: the server answered something other than a bulk result: %w", op, err)
		}
		sum.Pages++
		sum.Matched += r.Matched
		sum.Applied += r.Applied
		sum.Skipped += r.Skipped
		if page != nil {
			page(r)
		}
		if token = r.ContinuationToken; token == "" {
			return sum, nil
		}
	}
}
