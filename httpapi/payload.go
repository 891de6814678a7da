package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/interpreter"
)

// dfTime is DF's time format: RFC 3339 UTC with second precision.
const dfTime = "2006-01-02T15:04:05Z"

// fineTime is for times cairn adds (waits, history): RFC 3339 UTC, ms.
const fineTime = "2006-01-02T15:04:05.000Z"

func fmtTime(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

// statusPayload is DF's StatusResponsePayload plus what cairn knows beyond
// it. DF clients reject a payload without input or output, so both are
// always present (null when absent).
type statusPayload struct {
	Name            string          `json:"name"`
	InstanceID      string          `json:"instanceId"`
	RuntimeStatus   string          `json:"runtimeStatus"`
	Input           json.RawMessage `json:"input"`
	CustomStatus    json.RawMessage `json:"customStatus"`
	Output          json.RawMessage `json:"output"`
	CreatedTime     string          `json:"createdTime"`
	LastUpdatedTime string          `json:"lastUpdatedTime"`
	HistoryEvents   *[]historyEvent `json:"historyEvents,omitempty"`

	// cairn's own fields; DF clients ignore them.
	CurrentStep    *string     `json:"currentStep"`
	WaitingFor     *waitingFor `json:"waitingFor"`
	DefinitionHash string      `json:"definitionHash"`
	Revision       int64       `json:"revision"`
}

// waitingFor says what a blocked instance waits for and until when.
type waitingFor struct {
	Kind     string `json:"kind"` // activity, event, timer, retry
	Event    string `json:"event,omitempty"`
	Activity string `json:"activity,omitempty"`
	Attempt  int    `json:"attempt,omitempty"`
	Until    string `json:"until,omitempty"`
}

// historyEvent is one line of historyEvents.
type historyEvent struct {
	EventType string          `json:"EventType"`
	Timestamp string          `json:"Timestamp"`
	StepID    string          `json:"StepId,omitempty"`
	Name      string          `json:"Name,omitempty"`
	Data      json.RawMessage `json:"Data,omitempty"`
	Attempt   int             `json:"Attempt,omitempty"`
	Reason    string          `json:"Reason,omitempty"`
}

func newStatusPayload(st *interpreter.InstanceStatus, showInput bool) statusPayload {
	p := statusPayload{
		Name:            st.Name,
		InstanceID:      string(st.ID),
		RuntimeStatus:   string(st.Status),
		CustomStatus:    st.CustomStatus,
		Output:          st.Output,
		CreatedTime:     fmtTime(st.CreatedTime, dfTime),
		LastUpdatedTime: fmtTime(st.LastUpdatedTime, dfTime),
		DefinitionHash:  st.DefHash,
		Revision:        st.Revision,
	}
	if showInput {
		p.Input = st.Input
	}
	if w := st.Pending; w != nil && !st.Status.Terminal() {
		step := string(w.StepID)
		p.CurrentStep = &step
		p.WaitingFor = &waitingFor{Kind: string(w.Kind), Event: w.Event, Activity: w.Activity, Attempt: w.Attempt}
		if w.Deadline != nil {
			p.WaitingFor.Until = fmtTime(*w.Deadline, fineTime)
		}
	}
	return p
}

// History event types whose Data is an output, shown only with
// showHistoryOutput=true (as DF does for results).
var outputEvents = map[string]bool{"TaskCompleted": true, "ExecutionCompleted": true}

func newHistory(hs []interpreter.HistoryEvent, showOutput, showInput bool) []historyEvent {
	out := make([]historyEvent, 0, len(hs))
	for _, h := range hs {
		e := historyEvent{
			EventType: h.Type,
			Timestamp: fmtTime(h.Timestamp, fineTime),
			StepID:    string(h.StepID),
			Name:      h.Name,
			Data:      h.Data,
			Attempt:   h.Attempt,
			Reason:    h.Reason,
		}
		if (outputEvents[h.Type] && !showOutput) || (h.Type == "ExecutionStarted" && !showInput) {
			e.Data = nil
		}
		out = append(out, e)
	}
	return out
}

// getStatusCode is DF's GetStatus code: 202 while the instance can still
// change, 200 once it cannot (500 for Failed when the client opted in).
func getStatusCode(s interpreter.RuntimeStatus, iseOnFailure bool) int {
	switch {
	case s == interpreter.StatusFailed && iseOnFailure:
		return http.StatusInternalServerError
	case s.Terminal():
		return http.StatusOK
	default:
		return http.StatusAccepted
	}
}

// checkStatusPayload is DF's 202 start response body.
type checkStatusPayload struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// requestOrigin is scheme://host of the request as the client sees it,
// honouring X-Forwarded-Proto and X-Forwarded-Host from a proxy.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" && !strings.ContainsAny(h, "/\\@ ") {
		host = h
	}
	return scheme + "://" + host
}

func firstValue(h string) string {
	if i := strings.IndexByte(h, ','); i >= 0 {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSpace(h))
}

// managementURLs builds the absolute check-status payload for id. A key
// the client sent as ?code= is carried on, as DF does, so the URLs work as
// given; a key sent in a header is never put into a URL.
func managementURLs(c *gin.Context, id interpreter.InstanceID) checkStatusPayload {
	base := requestOrigin(c.Request) + dfBase + "/instances/" + url.PathEscape(string(id))
	extra := ""
	if code := c.Query("code"); code != "" {
		extra = "code=" + url.QueryEscape(code)
	}
	with := func(path, query string) string {
		q := query
		if extra != "" {
			if q != "" {
				q += "&"
			}
			q += extra
		}
		if q == "" {
			return base + path
		}
		return base + path + "?" + q
	}
	return checkStatusPayload{
		ID:                    string(id),
		StatusQueryGetURI:     with("", ""),
		SendEventPostURI:      with("/raiseEvent/{eventName}", ""),
		TerminatePostURI:      with("/terminate", "reason={text}"),
		PurgeHistoryDeleteURI: with("", ""),
		RestartPostURI:        with("/restart", ""),
		SuspendPostURI:        with("/suspend", "reason={text}"),
		ResumePostURI:         with("/resume", "reason={text}"),
	}
}

// requestURL is the absolute URL of the request itself (for Location on a
// 202 status).
func requestURL(r *http.Request) string {
	return requestOrigin(r) + r.URL.RequestURI()
}
