package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/interpreter"
)

// signalPayload is signal-with-start's answer: the check-status payload of
// the instance and whether this call started it. signalWithStart writes it
// by hand (appendCheckStatus); the tests hold that to this type's JSON.
type signalPayload struct {
	checkStatusPayload
	Started bool `json:"started"`
}

// POST /v1/instances/{id}/events/{event}?workflow=W[&input=JSON]
//
// Signal-with-start (Temporal's name): the body, a JSON value, is raised as
// the event into instance id; when no unfinished instance has that id, one
// of workflow W (its latest version) is started first with input (the
// `input` query parameter, a JSON text; none = null), in one atomic store
// step, so concurrent calls start it once and deliver every event. 202
// with the check-status payload and "started".
func (s *server) signalWithStart(c *gin.Context) {
	id, name, data, err := s.eventRequest(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	workflow := c.Query("workflow")
	if workflow == "" {
		s.fail(c, badRequest("missing-workflow", "signal-with-start needs ?workflow=NAME: the workflow to start when instance %s does not run (to raise into a running instance only, use POST %s/instances/{id}/raiseEvent/{event})", strconv.Quote(string(id)), dfBase))
		return
	}
	var input json.RawMessage
	if q, ok := c.GetQuery("input"); ok {
		if !json.Valid([]byte(q)) {
			s.fail(c, badRequest("invalid-json", "the input query parameter is not a JSON text: %s", strconv.Quote(q)))
			return
		}
		input = json.RawMessage(q)
	}
	ctx := c.Request.Context()
	def, err := s.latest(ctx, workflow)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := checkInput(def, input); err != nil {
		s.fail(c, err)
		return
	}
	ni := interpreter.Instantiate(def, id, input, s.now())
	ni.State.TraceParent = traceParent(c.Request.Header)
	started, err := s.be.SignalWithStart(ctx, ni, name, data)
	if err != nil {
		s.fail(c, err)
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	c.Writer.Header()["Location"] = []string{appendCheckStatus(buf, c, id)}
	if started {
		buf.WriteString(`,"started":true}`)
	} else {
		buf.WriteString(`,"started":false}`)
	}
	writeBody(c, http.StatusAccepted, buf.Bytes())
}

func (g *guarded) SignalWithStart(ctx context.Context, n interpreter.NewInstance, name string, data json.RawMessage) (bool, error) {
	return bound(g, ctx, "signal", g.timeout, func(ctx context.Context) (bool, error) { return g.be.SignalWithStart(ctx, n, name, data) })
}
