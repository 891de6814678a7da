package httpapi

// This file serves /v1/schedules: the deployed schedules with their state,
// pause, resume and trigger; and refuses a deployment whose schedule id
// another workflow has.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// nextRunsShown is how many coming ticks GET /v1/schedules/{id} lists.
const nextRunsShown = 5

// scheduleDoc is one schedule as the API shows it (openapi.json's Schedule).
type scheduleDoc struct {
	ID             string      `json:"id"`
	Workflow       string      `json:"workflow"`
	Cron           string      `json:"cron,omitempty"`
	Every          string      `json:"every,omitempty"`
	Timezone       string      `json:"timezone"`
	Overlap        string      `json:"overlap"`
	CatchupWindow  string      `json:"catchupWindow"`
	Paused         bool        `json:"paused"`
	NextRun        *time.Time  `json:"nextRun"`
	LastRun        *time.Time  `json:"lastRun"`
	LastInstanceID string      `json:"lastInstanceId"`
	Buffered       *time.Time  `json:"bufferedRun,omitempty"`
	NextRuns       []time.Time `json:"nextRuns,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func scheduleDocOf(d interpreter.Deployed, now time.Time, next int) scheduleDoc {
	sc := d.Schedule
	doc := scheduleDoc{ID: sc.ID, Workflow: d.Workflow.Name, Timezone: sc.Timezone, Overlap: string(sc.Overlap),
		CatchupWindow: sc.CatchupWindow.String(), Paused: sc.Paused}
	if sc.Cron != nil {
		doc.Cron = sc.Cron.Source
	} else {
		doc.Every = sc.Every.String()
	}
	nextRun := d.NextRun(now)
	doc.Paused = nextRun.IsZero() && (d.State == nil || d.State.Paused || sc.Paused)
	doc.NextRun = timePtr(nextRun)
	if st := d.State; st != nil {
		doc.LastRun, doc.LastInstanceID, doc.Buffered = timePtr(st.LastRun), string(st.LastInstance), timePtr(st.Buffered)
	}
	if next > 0 && !nextRun.IsZero() {
		doc.NextRuns = append([]time.Time{nextRun}, interpreter.NextTicks(sc, nextRun, next-1)...)
	}
	return doc
}

// newScheduler is the API's view of the schedules, over the store when it
// keeps them; nil otherwise (every schedule is then unknown).
func newScheduler(cfg Config, s *server) *interpreter.Scheduler {
	ss, ok := cfg.Backend.(interpreter.ScheduleStore)
	if !ok {
		return nil
	}
	return interpreter.NewScheduler(ss, s.cat, interpreter.SchedulerOptions{Clock: s.now, Logger: s.log})
}

func (s *server) scheduleRoutes(v1 *gin.RouterGroup) {
	v1.GET("/schedules", s.listSchedules)
	v1.GET("/schedules/:id", s.getSchedule)
	v1.POST("/schedules/:id/pause", s.pauseSchedule(true))
	v1.POST("/schedules/:id/resume", s.pauseSchedule(false))
	v1.POST("/schedules/:id/trigger", s.triggerSchedule)
}

// storeCtx bounds a schedules call as the guarded Backend bounds others.
func (s *server) storeCtx(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), DefaultStoreTimeout)
}

// scheduleErr turns an unknown schedule into its 404.
func scheduleErr(err error, id string) error {
	if errors.Is(err, interpreter.ErrUnknownSchedule) {
		return &apiError{http.StatusNotFound, "unknown-schedule", fmt.Sprintf("no deployed workflow has a schedule %q", id)}
	}
	return err
}

// GET /v1/schedules
func (s *server) listSchedules(c *gin.Context) {
	docs := []scheduleDoc{}
	if s.sched != nil {
		ctx, cancel := s.storeCtx(c)
		defer cancel()
		all, err := s.sched.Schedules(ctx)
		if err != nil {
			s.fail(c, err)
			return
		}
		now := s.now()
		for _, d := range all {
			docs = append(docs, scheduleDocOf(d, now, 0))
		}
	}
	writeJSON(c, http.StatusOK, gin.H{"schedules": docs})
}

// GET /v1/schedules/{id}
func (s *server) getSchedule(c *gin.Context) {
	id := c.Param("id")
	if s.sched == nil {
		s.fail(c, scheduleErr(interpreter.ErrUnknownSchedule, id))
		return
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	d, err := s.sched.Schedule(ctx, id)
	if err != nil {
		s.fail(c, scheduleErr(err, id))
		return
	}
	writeJSON(c, http.StatusOK, scheduleDocOf(d, s.now(), nextRunsShown))
}

// POST /v1/schedules/{id}/pause and /resume
func (s *server) pauseSchedule(paused bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if s.sched == nil {
			s.fail(c, scheduleErr(interpreter.ErrUnknownSchedule, id))
			return
		}
		ctx, cancel := s.storeCtx(c)
		defer cancel()
		if err := s.sched.SetPaused(ctx, id, paused); err != nil {
			s.fail(c, scheduleErr(err, id))
			return
		}
		d, err := s.sched.Schedule(ctx, id)
		if err != nil {
			s.fail(c, scheduleErr(err, id))
			return
		}
		writeJSON(c, http.StatusAccepted, scheduleDocOf(d, s.now(), 0))
	}
}

// POST /v1/schedules/{id}/trigger: one run now, subject to the overlap
// policy: {outcome: started|skipped|buffered|failed, instanceId}.
func (s *server) triggerSchedule(c *gin.Context) {
	id := c.Param("id")
	if s.sched == nil {
		s.fail(c, scheduleErr(interpreter.ErrUnknownSchedule, id))
		return
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	outcome, inst, err := s.sched.Trigger(ctx, id)
	if err != nil {
		s.fail(c, scheduleErr(err, id))
		return
	}
	writeJSON(c, http.StatusAccepted, gin.H{"schedule": id, "outcome": outcome, "instanceId": inst})
}

// checkScheduleIDs refuses a deployment whose schedule id the latest
// version of another workflow declares: a located issue per clash.
func (s *server) checkScheduleIDs(ctx context.Context, def *dsl.Workflow) error {
	if len(def.Schedules) == 0 {
		return nil
	}
	infos, err := s.be.ListDefinitions(ctx)
	if err != nil {
		return err
	}
	owner := map[string]string{}
	for _, info := range infos {
		if info.Name == def.Name || info.Latest == "" {
			continue
		}
		other, err := s.cat.Get(ctx, info.Name, info.Latest)
		if err != nil {
			if errors.Is(err, interpreter.ErrBrokenDefinition) {
				continue
			}
			return err
		}
		for _, sc := range other.Schedules {
			owner[sc.ID] = other.Name
		}
	}
	var issues dsl.Issues
	for _, sc := range def.Schedules {
		if w, ok := owner[sc.ID]; ok {
			issues = append(issues, dsl.Issue{File: def.File, Pos: sc.IDPos, Severity: dsl.SevError, Code: dsl.CodeDuplicateSchedule,
				Message: fmt.Sprintf("schedule id '%s' is already used by workflow %s; schedule ids must be unique among all workflows", sc.ID, w)})
		}
	}
	if len(issues) > 0 {
		return issues
	}
	return nil
}
