package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/interpreter"
)

// CountBackend counts instances per workflow and runtime status without
// reading them; redisstore.Store implements it (its counts are kept by the
// scripts that change a status, so they are exact across processes). A
// Backend without it answers GET /v1/stats with 501.
type CountBackend interface {
	CountInstances(ctx context.Context) (map[string]map[interpreter.RuntimeStatus]int64, error)
}

// runtimeStatuses are the statuses every counts object lists, zeros
// included, in the order a reader expects.
var runtimeStatuses = []interpreter.RuntimeStatus{
	interpreter.StatusPending, interpreter.StatusRunning, interpreter.StatusSuspended,
	interpreter.StatusCompleted, interpreter.StatusFailed, interpreter.StatusTerminated,
}

type statusCounts map[interpreter.RuntimeStatus]int64

type workflowStats struct {
	Name   string       `json:"name"`
	Counts statusCounts `json:"counts"`
	Total  int64        `json:"total"`
}

type stats struct {
	Workflows []workflowStats `json:"workflows"`
	Total     statusCounts    `json:"total"`
	Instances int64           `json:"instances"`
}

// workflowNameRE is the language's rule for workflow names (dsl).
var workflowNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`)

// checkWorkflowQuery refuses a workflow= parameter that no workflow could
// be named: a typo answers 400 rather than an empty result.
func checkWorkflowQuery(wf string) error {
	if !workflowNameRE.MatchString(wf) {
		return badRequest("bad-parameter", "workflow must be a workflow name (a letter, then up to 99 letters, digits, '_', '.' or '-'), not %q", wf)
	}
	return nil
}

// newCounts is a counts object with every status at 0.
func newCounts() statusCounts {
	c := make(statusCounts, len(runtimeStatuses))
	for _, st := range runtimeStatuses {
		c[st] = 0
	}
	return c
}

// GET /v1/stats[?workflow=W]: instances per workflow (by name) and runtime
// status, and their totals; with workflow, that one only (zeros when it
// has no instances).
func (s *server) stats(c *gin.Context) {
	if s.counts == nil {
		s.fail(c, &apiError{http.StatusNotImplemented, "not-implemented", "this server's store does not count instances"})
		return
	}
	wf, only := c.GetQuery("workflow")
	if only {
		if err := checkWorkflowQuery(wf); err != nil {
			s.fail(c, err)
			return
		}
	}
	counts, err := bound(s.guard, c.Request.Context(), "count", s.guard.timeout, s.counts.CountInstances)
	if err != nil {
		s.fail(c, err)
		return
	}
	if only {
		counts = map[string]map[interpreter.RuntimeStatus]int64{wf: counts[wf]}
	}
	out := stats{Workflows: []workflowStats{}, Total: newCounts()}
	for name, by := range counts {
		w := workflowStats{Name: name, Counts: newCounts()}
		for st, n := range by {
			w.Counts[st] += n
			w.Total += n
			out.Total[st] += n
			out.Instances += n
		}
		out.Workflows = append(out.Workflows, w)
	}
	slices.SortFunc(out.Workflows, func(a, b workflowStats) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	writeJSON(c, http.StatusOK, out)
}
