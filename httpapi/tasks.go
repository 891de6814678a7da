package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/interpreter"
)

// TaskBackend is what the external-worker protocol (docs/activities.md)
// needs from the store; redisstore.Store satisfies it.
type TaskBackend interface {
	ReadTasks(ctx context.Context, consumer, queue string, max int, block time.Duration) ([]interpreter.Task, error)
	ReclaimTasks(ctx context.Context, consumer, queue string, minIdle time.Duration, max int) ([]interpreter.Task, error)
	CompleteTask(ctx context.Context, ref interpreter.TaskRef, result json.RawMessage, now time.Time) error
	FailTask(ctx context.Context, ref interpreter.TaskRef, info interpreter.ErrorInfo, now time.Time) error
	// ExtendTask renews a lease: ErrConflict when another consumer holds
	// the task now, ErrNotFound when it is closed.
	ExtendTask(ctx context.Context, consumer string, ref interpreter.TaskRef) error
}

// DefaultTaskLease is how long a polled task stays with its worker without
// a heartbeat before another worker may take it.
const DefaultTaskLease = 30 * time.Second

const (
	maxPollActivities = 32
	maxPollWait       = 60 * time.Second
	defaultPollWait   = 30 * time.Second
	// pollSlice is how long one blocking read waits per activity when a
	// worker polls for several: reads of different queues cannot share one
	// blocking call.
	pollSlice        = 250 * time.Millisecond
	maxFailMessage   = 4096
	maxErrorTypeLen  = 100
	workerConsumerAt = "w:" // worker consumers never collide with runtimes
)

var (
	activityNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`)
	workerIDRE     = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)
)

type pollRequest struct {
	Activities  []string `json:"activities"`
	WorkerID    string   `json:"workerId"`
	WaitSeconds *float64 `json:"waitSeconds"`
}

type polledTask struct {
	TaskID         string          `json:"taskId"`
	Activity       string          `json:"activity"`
	Input          json.RawMessage `json:"input"`
	Attempt        int             `json:"attempt"`
	InstanceID     string          `json:"instanceId"`
	Workflow       string          `json:"workflow"`
	StepID         string          `json:"stepId"`
	TimeoutSeconds *float64        `json:"timeoutSeconds"`
	// ScheduleToStartSeconds and HeartbeatSeconds are the activity's
	// scheduleToStart and heartbeat timeouts (null = none): a worker
	// heartbeats well within both HeartbeatSeconds and LeaseSeconds.
	ScheduleToStartSeconds *float64 `json:"scheduleToStartSeconds"`
	HeartbeatSeconds       *float64 `json:"heartbeatSeconds"`
	LeaseSeconds           float64  `json:"leaseSeconds"`
}

// requireTasks answers 501 when no TaskBackend was configured.
func (s *server) requireTasks(c *gin.Context) {
	if s.tasks == nil {
		s.fail(c, &apiError{http.StatusNotImplemented, "not-implemented", "this server has no task store for external workers"})
		return
	}
	c.Next()
}

// decodeObject reads a JSON object body into v; an empty body leaves v as is.
func (s *server) decodeObject(c *gin.Context, v any) error {
	raw, err := s.readJSON(c)
	if err != nil || raw == nil {
		return err
	}
	if raw[0] != '{' {
		return badRequest("bad-parameter", "the body must be a JSON object")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return badRequest("bad-parameter", "%v", err)
	}
	return nil
}

// POST /v1/tasks/poll
func (s *server) pollTask(c *gin.Context) {
	var req pollRequest
	if err := s.decodeObject(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := checkPoll(&req); err != nil {
		s.fail(c, err)
		return
	}
	wait := defaultPollWait
	if req.WaitSeconds != nil {
		wait = time.Duration(*req.WaitSeconds * float64(time.Second))
	}
	ctx := c.Request.Context()
	consumer := workerConsumerAt + req.WorkerID
	deadline := time.Now().Add(wait)
	first := rand.IntN(len(req.Activities)) // fairness among the activities
	for round := 0; ; round++ {
		for i := range req.Activities {
			act := req.Activities[(first+i)%len(req.Activities)]
			var tasks []interpreter.Task
			var err error
			if round == 0 {
				// A task whose worker died, or one handed back by a read
				// that got more than it asked for, goes first.
				tasks, err = s.tasks.ReclaimTasks(ctx, consumer, act, s.lease, 1)
				if err == nil && len(tasks) == 0 {
					tasks, err = s.tasks.ReadTasks(ctx, consumer, act, 1, 0)
				}
			} else {
				block := min(time.Until(deadline), pollSlice)
				if len(req.Activities) == 1 {
					block = time.Until(deadline)
				}
				if block <= 0 {
					break
				}
				tasks, err = s.tasks.ReadTasks(ctx, consumer, act, 1, block)
			}
			if err != nil {
				if ctx.Err() != nil {
					return // the worker went away; the lease brings the task back
				}
				s.fail(c, err)
				return
			}
			if len(tasks) > 0 {
				c.JSON(http.StatusOK, s.polled(tasks[0]))
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !time.Now().Before(deadline) {
			c.Status(http.StatusNoContent)
			return
		}
	}
}

func checkPoll(req *pollRequest) error {
	if len(req.Activities) == 0 || len(req.Activities) > maxPollActivities {
		return badRequest("bad-parameter", "activities must name 1 to %d activities", maxPollActivities)
	}
	seen := map[string]bool{}
	for _, a := range req.Activities {
		if !activityNameRE.MatchString(a) {
			return badRequest("bad-parameter", "activity name %q must match %s", a, activityNameRE)
		}
		if seen[a] {
			return badRequest("bad-parameter", "activity %q is listed twice", a)
		}
		seen[a] = true
	}
	if !workerIDRE.MatchString(req.WorkerID) {
		return badRequest("bad-parameter", "workerId must be 1 to 100 characters from A-Z a-z 0-9 _ . : -")
	}
	if w := req.WaitSeconds; w != nil && (*w < 0 || *w > maxPollWait.Seconds() || *w != float64(int(*w))) {
		return badRequest("bad-parameter", "waitSeconds must be a whole number from 0 to %d", int(maxPollWait.Seconds()))
	}
	return nil
}

func (s *server) polled(t interpreter.Task) polledTask {
	sc := t.Schedule
	input := sc.Input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	out := polledTask{
		TaskID: t.Ref.Token(), Activity: sc.Activity, Input: input, Attempt: sc.Attempt,
		InstanceID: string(sc.Instance), Workflow: sc.Workflow, StepID: string(sc.StepID),
		LeaseSeconds: s.lease.Seconds(),
	}
	out.TimeoutSeconds = seconds(sc.Timeout)
	out.ScheduleToStartSeconds = seconds(sc.ScheduleToStart)
	out.HeartbeatSeconds = seconds(sc.Heartbeat)
	return out
}

// seconds is d in seconds, nil for 0 (none).
func seconds(d time.Duration) *float64 {
	if d <= 0 {
		return nil
	}
	secs := d.Seconds()
	return &secs
}

// taskRef reads the :task path parameter; an unknown token is a 404.
func taskRef(c *gin.Context) (interpreter.TaskRef, error) {
	ref, err := interpreter.ParseTaskToken(c.Param("task"))
	if err != nil {
		return ref, &apiError{http.StatusNotFound, "not-found", "task " + c.Param("task") + " was never handed out"}
	}
	return ref, nil
}

// closedTask turns the store's "already closed" answers into the 404 the
// protocol promises, and a task withdrawn because its instance ended into
// a 410 instance-finished, so its worker stops.
func closedTask(err error, token string) error {
	if errors.Is(err, interpreter.ErrInstanceFinished) {
		return &apiError{http.StatusGone, "instance-finished", "task " + token + " was withdrawn: its instance has ended"}
	}
	if errors.Is(err, interpreter.ErrDuplicate) || errors.Is(err, interpreter.ErrNotFound) {
		return &apiError{http.StatusNotFound, "not-found", "task " + token + " is closed (completed, failed or its instance purged)"}
	}
	return err
}

// POST /v1/tasks/{task}/complete
func (s *server) completeTask(c *gin.Context) {
	ref, err := taskRef(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var body struct {
		Result json.RawMessage `json:"result"`
	}
	if err := s.decodeObject(c, &body); err != nil {
		s.fail(c, err)
		return
	}
	if string(body.Result) == "null" {
		body.Result = nil
	}
	if err := s.tasks.CompleteTask(c.Request.Context(), ref, body.Result, s.now().UTC()); err != nil {
		s.fail(c, closedTask(err, c.Param("task")))
		return
	}
	c.JSON(http.StatusOK, gin.H{"taskId": c.Param("task"), "status": "completed"})
}

// POST /v1/tasks/{task}/fail
func (s *server) failTask(c *gin.Context) {
	ref, err := taskRef(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var body struct {
		Error *struct {
			Type      *string `json:"type"`
			Message   string  `json:"message"`
			Retryable *bool   `json:"retryable"`
		} `json:"error"`
	}
	if err := s.decodeObject(c, &body); err != nil {
		s.fail(c, err)
		return
	}
	info := interpreter.ErrorInfo{Type: interpreter.ErrTypeActivity, Retryable: true}
	if e := body.Error; e != nil {
		if e.Type != nil {
			if *e.Type == "" || utf8.RuneCountInString(*e.Type) > maxErrorTypeLen || hasControl(*e.Type) {
				s.fail(c, badRequest("bad-parameter", "error.type must be 1 to %d characters without control characters", maxErrorTypeLen))
				return
			}
			info.Type = *e.Type
		}
		info.Message = truncateUTF8(e.Message, maxFailMessage)
		if e.Retryable != nil {
			info.Retryable = *e.Retryable
		}
	}
	if err := s.tasks.FailTask(c.Request.Context(), ref, info, s.now().UTC()); err != nil {
		s.fail(c, closedTask(err, c.Param("task")))
		return
	}
	c.JSON(http.StatusOK, gin.H{"taskId": c.Param("task"), "status": "failed"})
}

// POST /v1/tasks/{task}/heartbeat
func (s *server) heartbeatTask(c *gin.Context) {
	ref, err := taskRef(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var body struct {
		WorkerID string `json:"workerId"`
	}
	if err := s.decodeObject(c, &body); err != nil {
		s.fail(c, err)
		return
	}
	if !workerIDRE.MatchString(body.WorkerID) {
		s.fail(c, badRequest("bad-parameter", "workerId is required: the worker that polled the task"))
		return
	}
	err = s.tasks.ExtendTask(c.Request.Context(), workerConsumerAt+body.WorkerID, ref)
	switch {
	case errors.Is(err, interpreter.ErrConflict):
		s.fail(c, &apiError{http.StatusConflict, "lease-lost", "the lease on task " + c.Param("task") + " expired and another worker holds it now"})
		return
	case err != nil:
		s.fail(c, closedTask(err, c.Param("task")))
		return
	}
	c.JSON(http.StatusOK, gin.H{"taskId": c.Param("task"), "leaseSeconds": s.lease.Seconds()})
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return false
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
