package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/interpreter"
)

// Bulk operations (POST /v1/bulk/{terminate|suspend|resume|purge}) act on
// the instances a filter selects, one page per request: the answer says
// what the page did and carries a continuation token for the next. Paging
// in the client's hands rather than a background job means no job state in
// Redis, no work lost when the process that took a job dies (any process
// serves the next page: the token is a cursor in the listing's order),
// progress visible after every page, and every request bounded (a listing
// page and one pipeline of single-instance scripts), so a million
// instances hold neither Redis nor the API for long.

// BulkBackend acts on many listed instances in one round trip;
// redisstore.Store implements it. A Backend without it answers the bulk
// routes with 501.
type BulkBackend interface {
	// SendControlMany queues ev for each instance; one error per id (nil,
	// ErrNotFound or ErrFinished when it went or finished meanwhile).
	SendControlMany(ctx context.Context, ids []interpreter.InstanceID, ev interpreter.Event) ([]error, error)
	// PurgeInstances deletes each finished instance; one error per id (nil,
	// ErrNotFound, ErrAlreadyRunning).
	PurgeInstances(ctx context.Context, ids []interpreter.InstanceID) ([]error, error)
}

// bulkPage is the default and largest page of a bulk request.
const bulkPage = 1000

// bulkOps are the operations and the runtime statuses each applies to.
var bulkOps = map[string][]interpreter.RuntimeStatus{
	"terminate": {interpreter.StatusPending, interpreter.StatusRunning, interpreter.StatusSuspended},
	"suspend":   {interpreter.StatusPending, interpreter.StatusRunning},
	"resume":    {interpreter.StatusSuspended},
	"purge":     {interpreter.StatusCompleted, interpreter.StatusFailed, interpreter.StatusTerminated},
}

type bulkResult struct {
	Operation string `json:"operation"`
	DryRun    bool   `json:"dryRun"`
	// Matched: the instances this page selected (a dry run without a
	// created range or id prefix: all of them, from the counts).
	Matched int64 `json:"matched"`
	// Applied: those the operation was queued for (terminate, suspend,
	// resume: the engine applies it in order with the instance's other
	// messages) or done to (purge).
	Applied int `json:"applied"`
	// Skipped: those that finished, were resumed or went since listed.
	Skipped           int    `json:"skipped"`
	ContinuationToken string `json:"continuationToken,omitempty"`
}

// POST /v1/bulk/{op}?workflow=&runtimeStatus=&createdTimeFrom=&createdTimeTo=&instanceIdPrefix=&top=&dryRun=&reason=&continuationToken=
func (s *server) bulk(c *gin.Context) {
	op := c.Param("op")
	applies, ok := bulkOps[op]
	if !ok {
		s.fail(c, &apiError{http.StatusNotFound, "not-found", "no bulk operation " + strconv.Quote(op) + " (terminate, suspend, resume, purge)"})
		return
	}
	if s.bulkBE == nil {
		s.fail(c, &apiError{http.StatusNotImplemented, "not-implemented", "this server's store has no bulk operations"})
		return
	}
	q, err := bulkQuery(c, op, applies)
	if err != nil {
		s.fail(c, err)
		return
	}
	dry, err := boolQuery(c, "dryRun", false)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := bulkResult{Operation: op, DryRun: dry}
	ctx := c.Request.Context()
	if dry && q.CreatedFrom.IsZero() && q.CreatedTo.IsZero() && q.Prefix == "" && q.ContinuationToken == "" && s.counts != nil {
		// Workflow and statuses only: the counts answer at once.
		counts, err := bound(s.guard, ctx, "count", s.guard.timeout, s.counts.CountInstances)
		if err != nil {
			s.fail(c, err)
			return
		}
		for wf, by := range counts {
			if q.Workflow == "" || wf == q.Workflow {
				for _, st := range q.Statuses {
					out.Matched += by[st]
				}
			}
		}
		writeJSON(c, http.StatusOK, out)
		return
	}
	page, next, err := s.be.ListInstances(ctx, q)
	if err != nil {
		s.fail(c, err)
		return
	}
	out.Matched, out.ContinuationToken = int64(len(page)), next
	if !dry && len(page) > 0 {
		ids := make([]interpreter.InstanceID, len(page))
		for i := range page {
			ids[i] = page[i].ID
		}
		errs, err := bound(s.guard, ctx, "bulk "+op, s.guard.timeout*bulkFactor, func(ctx context.Context) ([]error, error) {
			if op == "purge" {
				return s.bulkBE.PurgeInstances(ctx, ids)
			}
			kind := map[string]interpreter.EventKind{"terminate": interpreter.EvTerminate, "suspend": interpreter.EvSuspend, "resume": interpreter.EvResume}[op]
			return s.bulkBE.SendControlMany(ctx, ids, interpreter.Event{Kind: kind, Time: s.now().UTC(), Reason: c.Query("reason")})
		})
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, e := range errs {
			switch {
			case e == nil:
				out.Applied++
			case errors.Is(e, interpreter.ErrNotFound), errors.Is(e, interpreter.ErrFinished), errors.Is(e, interpreter.ErrAlreadyRunning):
				out.Skipped++
			default:
				s.fail(c, e)
				return
			}
		}
	}
	if next != "" {
		c.Header("x-ms-continuation-token", next)
	}
	writeJSON(c, http.StatusOK, out)
}

// bulkQuery reads a bulk request's filter: the instance list's parameters,
// the statuses narrowed to those op applies to, and at least one filter
// (an empty one would act on every instance).
func bulkQuery(c *gin.Context, op string, applies []interpreter.RuntimeStatus) (interpreter.ListQuery, error) {
	q := interpreter.ListQuery{Prefix: c.Query("instanceIdPrefix"), Top: bulkPage}
	var err error
	if wf, ok := c.GetQuery("workflow"); ok {
		if err := checkWorkflowQuery(wf); err != nil {
			return q, err
		}
		q.Workflow = wf
	}
	asked, err := statusesQuery(c)
	if err != nil {
		return q, err
	}
	if q.CreatedFrom, err = timeQuery(c, "createdTimeFrom"); err != nil {
		return q, err
	}
	if q.CreatedTo, err = timeQuery(c, "createdTimeTo"); err != nil {
		return q, err
	}
	if v := c.Query("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > bulkPage {
			return q, badRequest("bad-parameter", "top must be a whole number from 1 to %d, not %q", bulkPage, v)
		}
		q.Top = n
	}
	if q.Workflow == "" && len(asked) == 0 && q.Prefix == "" && q.CreatedFrom.IsZero() && q.CreatedTo.IsZero() {
		return q, badRequest("filter-required", "a bulk %s needs a filter: workflow, runtimeStatus, createdTimeFrom, createdTimeTo or instanceIdPrefix", op)
	}
	q.Statuses = applies
	if len(asked) > 0 {
		q.Statuses = nil
		for _, st := range applies {
			if slices.Contains(asked, st) {
				q.Statuses = append(q.Statuses, st)
			}
		}
		if len(q.Statuses) == 0 {
			return q, badRequest("bad-parameter", "%s applies to instances that are %v; runtimeStatus names none of them", op, applies)
		}
	}
	q.ContinuationToken = c.GetHeader("x-ms-continuation-token")
	if q.ContinuationToken == "" {
		q.ContinuationToken = c.Query("continuationToken")
	}
	return q, nil
}
