package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// Retry-After values DF sends: on start and on a 202 status.
const (
	retryAfterStart  = "10"
	retryAfterStatus = "5"
)

// List page sizes.
const (
	defaultTop = 100
	maxTop     = 1000
)

// newInstanceID is a random 32-hex-digit id, like DF's GUID "N" format.
func newInstanceID() interpreter.InstanceID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return interpreter.InstanceID(hex.EncodeToString(b[:]))
}

// latest returns the newest deployed definition of the workflow name.
func (s *server) latest(ctx context.Context, name string) (*dsl.Workflow, error) {
	hash, err := s.be.LatestDefinition(ctx, name)
	if errors.Is(err, interpreter.ErrNotFound) {
		return nil, &apiError{http.StatusNotFound, "unknown-workflow", "workflow " + strconv.Quote(name) + " is not deployed"}
	}
	if err != nil {
		return nil, err
	}
	return s.cat.Get(ctx, name, hash)
}

// waitOptions are start-and-wait's timeout and pollingInterval.
type waitOptions struct {
	timeout, poll time.Duration
	on            bool
}

func waitQuery(c *gin.Context) (waitOptions, error) {
	if c.Request.URL.RawQuery == "" {
		return waitOptions{}, nil // without gin's query cache, a map per request
	}
	timeout, on, err := secondsQuery(c, "timeout")
	if err != nil {
		return waitOptions{}, err
	}
	poll, _, err := secondsQuery(c, "pollingInterval")
	if err != nil {
		return waitOptions{}, err
	}
	return waitOptions{timeout: timeout, poll: poll, on: on && timeout > 0}, nil
}

// POST /orchestrators/{name}[/{instanceId}]
func (s *server) start(c *gin.Context) {
	name := c.Param("name")
	id := interpreter.InstanceID(c.Param("id"))
	if id == "" {
		id = newInstanceID()
	} else if err := checkInstanceID(string(id)); err != nil {
		s.fail(c, err)
		return
	}
	wait, err := waitQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	input, err := s.readJSON(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	def, err := s.latest(c.Request.Context(), name)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.startInstance(c, def, id, input, wait)
}

// checkInput holds a start's input to the workflow's input schema.
func checkInput(def *dsl.Workflow, input json.RawMessage) error {
	if def.Input == nil || quickValid(def.Input, input) {
		return nil
	}
	var v any
	if input != nil {
		if err := json.Unmarshal(input, &v); err != nil {
			return badRequest("invalid-json", "malformed JSON: %v", err)
		}
	}
	if err := def.Input.Validate(v); err != nil {
		return badRequest("invalid-input", "the input does not match workflow %s's input schema: %v", def.Name, err)
	}
	return nil
}

// startInstance validates the input, creates the instance and answers 202
// with the check-status payload, or, when waiting, the outcome.
func (s *server) startInstance(c *gin.Context, def *dsl.Workflow, id interpreter.InstanceID, input json.RawMessage, wait waitOptions) {
	if err := checkInput(def, input); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	var changes <-chan interpreter.StatusChange
	if wait.on {
		// Subscribe before creating, so no change can slip past.
		ch, stop, err := s.be.WatchStatus(ctx, id)
		if err != nil {
			s.fail(c, err)
			return
		}
		defer stop()
		changes = ch
	}
	ni := interpreter.Instantiate(def, id, input, s.now())
	ni.State.TraceParent = traceParent(c.Request.Header)
	if err := s.be.CreateInstance(ctx, ni); err != nil {
		if errors.Is(err, interpreter.ErrAlreadyRunning) {
			err = &apiError{http.StatusConflict, "already-running", "instance " + strconv.Quote(string(id)) + " already exists and is not finished"}
		}
		s.fail(c, err)
		return
	}
	if wait.on {
		st, err := s.waitDone(ctx, id, changes, wait)
		if err != nil {
			s.fail(c, err)
			return
		}
		if st != nil && st.Status.Terminal() {
			s.writeFinished(c, st)
			return
		}
	}
	buf := getBuf()
	defer putBuf(buf)
	loc := appendCheckStatus(buf, c, id)
	buf.WriteByte('}')
	h := c.Writer.Header()
	h["Location"] = []string{loc}
	h["Retry-After"] = retryAfterStartHeader
	writeBody(c, http.StatusAccepted, buf.Bytes())
}

// retryAfterStartHeader is the Retry-After of every 202 start answer, one
// shared slice (see jsonContentType).
var retryAfterStartHeader = []string{retryAfterStart}

// writeFinished answers start-and-wait for a finished instance as DF does:
// 200 with the raw output when Completed, else the status payload.
func (s *server) writeFinished(c *gin.Context, st *interpreter.InstanceStatus) {
	if st.Status == interpreter.StatusCompleted {
		out := st.Output
		if out == nil {
			out = json.RawMessage("null")
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", out)
		return
	}
	ise, err := boolQuery(c, "returnInternalServerErrorOnFailure", false)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, getStatusCode(st.Status, ise), newStatusPayload(st, true))
}

// minPoll bounds how often start-and-wait re-reads the status. Changes
// arrive through the subscription; the re-read only covers a lost notice.
const minPoll = time.Second

// waitDone waits until the instance is finished or wait.timeout passed,
// and returns its latest status.
func (s *server) waitDone(ctx context.Context, id interpreter.InstanceID, changes <-chan interpreter.StatusChange, wait waitOptions) (*interpreter.InstanceStatus, error) {
	deadline := time.NewTimer(wait.timeout)
	defer deadline.Stop()
	poll := max(wait.poll, minPoll)
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		select {
		case ch, ok := <-changes:
			if !ok {
				changes = nil // the subscription broke: the ticker still checks
				continue
			}
			if !ch.Status.Terminal() {
				continue
			}
		case <-ticker.C:
		case <-deadline.C:
			return s.be.FetchStatus(ctx, id)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		st, err := s.be.FetchStatus(ctx, id)
		if err != nil {
			return nil, err
		}
		if st.Status.Terminal() {
			return st, nil
		}
	}
}

// GET /instances/{id}
func (s *server) status(c *gin.Context) {
	id, err := instanceID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	showHistory, showHistoryOutput, showInput, ise := false, false, true, false
	if c.Request.URL.RawQuery != "" { // else the defaults, without parsing an empty query
		for _, q := range []struct {
			name string
			def  bool
			dst  *bool
		}{
			{"showHistory", false, &showHistory},
			{"showHistoryOutput", false, &showHistoryOutput},
			{"showInput", true, &showInput},
			{"returnInternalServerErrorOnFailure", false, &ise},
		} {
			if *q.dst, err = boolQuery(c, q.name, q.def); err != nil {
				s.fail(c, err)
				return
			}
		}
	}
	ctx := c.Request.Context()
	st, err := s.be.FetchStatus(ctx, id)
	if err != nil {
		s.fail(c, notFoundInstance(err, id))
		return
	}
	code := getStatusCode(st.Status, ise)
	if !showHistory {
		buf := getBuf()
		defer putBuf(buf)
		if appendStatus(buf, st, showInput) {
			statusHeaders(c, code)
			writeBody(c, code, buf.Bytes())
			return
		}
	}
	p := newStatusPayload(st, showInput)
	if showHistory {
		hs, err := s.be.FetchHistory(ctx, id)
		if err != nil && !errors.Is(err, interpreter.ErrNotFound) {
			s.fail(c, err)
			return
		}
		h := newHistory(hs, showHistoryOutput, showInput)
		p.HistoryEvents = &h
	}
	statusHeaders(c, code)
	writeJSON(c, code, p)
}

// statusHeaders adds DF's Location and Retry-After to a 202 status answer.
// They are assigned, not Set: the keys are canonical already, and the
// Retry-After value is one shared slice (see jsonContentType).
func statusHeaders(c *gin.Context, code int) {
	if code == http.StatusAccepted {
		h := c.Writer.Header()
		h["Location"] = []string{requestURL(c.Request)}
		h["Retry-After"] = retryAfterStatusHeader
	}
}

// retryAfterStatusHeader is the Retry-After of every 202 status answer.
var retryAfterStatusHeader = []string{retryAfterStatus}

// notFoundInstance names the instance in a not-found error.
func notFoundInstance(err error, id interpreter.InstanceID) error {
	if errors.Is(err, interpreter.ErrNotFound) {
		return &apiError{http.StatusNotFound, "not-found", "instance " + strconv.Quote(string(id)) + " not found"}
	}
	if errors.Is(err, interpreter.ErrFinished) {
		return &apiError{http.StatusGone, "finished", "instance " + strconv.Quote(string(id)) + " has already finished"}
	}
	return err
}

// GET /instances
func (s *server) list(c *gin.Context) {
	q := interpreter.ListQuery{Prefix: c.Query("instanceIdPrefix"), Top: defaultTop}
	var err error
	if wf, ok := c.GetQuery("workflow"); ok {
		if err := checkWorkflowQuery(wf); err != nil {
			s.fail(c, err)
			return
		}
		q.Workflow = wf
	}
	if q.Statuses, err = statusesQuery(c); err != nil {
		s.fail(c, err)
		return
	}
	if q.CreatedFrom, err = timeQuery(c, "createdTimeFrom"); err != nil {
		s.fail(c, err)
		return
	}
	if q.CreatedTo, err = timeQuery(c, "createdTimeTo"); err != nil {
		s.fail(c, err)
		return
	}
	if q.WithInput, err = boolQuery(c, "showInput", true); err != nil {
		s.fail(c, err)
		return
	}
	if v := c.Query("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTop {
			s.fail(c, badRequest("bad-parameter", "top must be a whole number from 1 to %d, not %q", maxTop, v))
			return
		}
		q.Top = n
	}
	q.ContinuationToken = c.GetHeader("x-ms-continuation-token")
	if q.ContinuationToken == "" {
		q.ContinuationToken = c.Query("continuationToken")
	}
	if q.ContinuationToken == "null" {
		// DF answers a last page with an empty token that some clients
		// echo back as "null".
		q.ContinuationToken = ""
	}
	items, next, err := s.be.ListInstances(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]statusPayload, len(items))
	for i := range items {
		out[i] = newStatusPayload(&items[i], q.WithInput)
	}
	if next != "" {
		c.Header("x-ms-continuation-token", next)
	}
	writeJSON(c, http.StatusOK, out)
}

type purgeResult struct {
	InstancesDeleted int `json:"instancesDeleted"`
}

// DELETE /instances/{id}
func (s *server) purge(c *gin.Context) {
	id, err := instanceID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.be.Purge(c.Request.Context(), id); err != nil {
		s.fail(c, notFoundInstance(err, id))
		return
	}
	writeJSON(c, http.StatusOK, purgeResult{1})
}

// DELETE /instances?createdTimeFrom=&createdTimeTo=&runtimeStatus=
func (s *server) purgeMany(c *gin.Context) {
	from, err := timeQuery(c, "createdTimeFrom")
	if err != nil {
		s.fail(c, err)
		return
	}
	if from.IsZero() {
		s.fail(c, badRequest("bad-parameter", "createdTimeFrom is required"))
		return
	}
	to, err := timeQuery(c, "createdTimeTo")
	if err != nil {
		s.fail(c, err)
		return
	}
	if to.IsZero() {
		to = s.now().UTC()
	}
	statuses, err := statusesQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	n, err := s.be.PurgeMany(c.Request.Context(), from, to, statuses)
	if err != nil {
		s.fail(c, err)
		return
	}
	if n == 0 {
		s.fail(c, &apiError{http.StatusNotFound, "not-found", "no instance matched"})
		return
	}
	writeJSON(c, http.StatusOK, purgeResult{n})
}

// eventRequest reads what raising an event takes: the instance id and
// event name from the path, the payload (JSON) from the body.
func (s *server) eventRequest(c *gin.Context) (interpreter.InstanceID, string, json.RawMessage, error) {
	id, err := instanceID(c)
	if err != nil {
		return "", "", nil, err
	}
	name := c.Param("event")
	if err := checkEventName(name); err != nil {
		return "", "", nil, err
	}
	if err := requireJSONContent(c); err != nil {
		return "", "", nil, err
	}
	data, err := s.readJSON(c)
	return id, name, data, err
}

// POST /instances/{id}/raiseEvent/{event}
func (s *server) raiseEvent(c *gin.Context) {
	id, name, data, err := s.eventRequest(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.checkEvent(c.Request.Context(), id, name, data); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.be.RaiseEvent(c.Request.Context(), id, name, data, s.now().UTC()); err != nil {
		s.fail(c, notFoundInstance(err, id))
		return
	}
	c.Status(http.StatusAccepted)
}

// POST /instances/{id}/terminate|suspend|resume?reason=
func (s *server) control(kind interpreter.EventKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := instanceID(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		ev := interpreter.Event{Kind: kind, Time: s.now().UTC(), Reason: query(c, "reason")}
		if err := s.be.SendControl(c.Request.Context(), id, ev); err != nil {
			s.fail(c, notFoundInstance(err, id))
			return
		}
		c.Status(http.StatusAccepted)
	}
}

// POST /instances/{id}/restart[?restartWithNewInstanceId=true|false]
func (s *server) restart(c *gin.Context) {
	id, err := instanceID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	fresh, err := boolQuery(c, "restartWithNewInstanceId", true)
	if err != nil {
		s.fail(c, err)
		return
	}
	wait, err := waitQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	st, err := s.be.FetchStatus(ctx, id)
	if err != nil {
		s.fail(c, notFoundInstance(err, id))
		return
	}
	def, err := s.latest(ctx, st.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	newID := id
	if fresh {
		newID = newInstanceID()
	}
	s.startInstance(c, def, newID, st.Input, wait)
}
