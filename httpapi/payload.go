package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
	Kind     string `json:"kind"` // activity, event, timer, retry, branches, child
	Event    string `json:"event,omitempty"`
	Activity string `json:"activity,omitempty"`
	Attempt  int    `json:"attempt,omitempty"`
	Until    string `json:"until,omitempty"`
	// An `any` or `all` wait: the events it still waits for, whether it
	// wants all of them, and those an `all` has received.
	Events   []string `json:"events,omitempty"`
	All      bool     `json:"all,omitempty"`
	Received []string `json:"received,omitempty"`
	// A parallel or forEach step: its branches and how many have ended.
	Branches int  `json:"branches,omitempty"`
	Done     *int `json:"done,omitempty"`
	// A call step: the child instance it waits for.
	Child string `json:"child,omitempty"`
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
		p.WaitingFor = &waitingFor{
			Kind: string(w.Kind), Event: w.Event, Activity: w.Activity, Attempt: w.Attempt,
			Events: w.Events, All: w.All, Received: w.Got, Branches: w.Branches, Child: string(w.Child),
		}
		if w.Deadline != nil {
			p.WaitingFor.Until = fmtTime(*w.Deadline, fineTime)
		}
		if w.Kind == interpreter.WaitBranches {
			done := w.Done
			p.WaitingFor.Done = &done
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
	scheme, host := origin(r)
	return scheme + "://" + host
}

// origin is requestOrigin in parts, for callers that join more to it in
// one allocation.
func origin(r *http.Request) (scheme, host string) {
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
		scheme = p
	}
	host = r.Host
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" && !strings.ContainsAny(h, "/\\@ ") {
		host = h
	}
	return scheme, host
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
		SendEventPostURI:      with(raiseEventPath, ""),
		TerminatePostURI:      with(terminatePath, reasonQuery),
		PurgeHistoryDeleteURI: with("", ""),
		RestartPostURI:        with(restartPath, ""),
		SuspendPostURI:        with(suspendPath, reasonQuery),
		ResumePostURI:         with(resumePath, reasonQuery),
	}
}

// Paths and queries of the check-status URIs, after the instance's URL.
const (
	raiseEventPath = "/raiseEvent/{eventName}"
	terminatePath  = "/terminate"
	restartPath    = "/restart"
	suspendPath    = "/suspend"
	resumePath     = "/resume"
	reasonQuery    = "reason={text}"
)

// appendCheckStatus writes to buf the JSON of managementURLs(c, id) as
// marshal writes it, without its closing brace (signal-with-start adds a
// field), and returns statusQueryGetUri for Location. It builds one string,
// the instance's URL, where managementURLs builds seven and marshal
// reflects over them: they were a tenth of a start's CPU. A URL that needs
// JSON escaping (a forwarded host with a quote, say) takes marshal's path.
// TestAppendCheckStatusIsMarshal holds the two to the same bytes.
func appendCheckStatus(buf *bytes.Buffer, c *gin.Context, id interpreter.InstanceID) string {
	scheme, host := origin(c.Request)
	esc := string(id)
	if needsPathEscape(esc) {
		esc = url.PathEscape(esc)
	}
	extra := ""
	if c.Request.URL.RawQuery != "" { // else no code, and no query for gin to parse into a map
		if code := query(c, "code"); code != "" {
			extra = "code=" + url.QueryEscape(code)
		}
	}
	base := scheme + "://" + host + dfBase + "/instances/" + esc
	if !plainJSON(base) || !plainJSON(string(id)) {
		p := managementURLs(c, id)
		b, err := marshal(p)
		if err != nil {
			panic(err) // strings always encode
		}
		buf.Write(b[:len(b)-1])
		return p.StatusQueryGetURI
	}
	uri := func(key, path, query string) {
		buf.WriteString(key)
		buf.WriteString(base)
		buf.WriteString(path)
		switch {
		case query != "" && extra != "":
			buf.WriteByte('?')
			buf.WriteString(query)
			buf.WriteByte('&')
			buf.WriteString(extra)
		case query != "":
			buf.WriteByte('?')
			buf.WriteString(query)
		case extra != "":
			buf.WriteByte('?')
			buf.WriteString(extra)
		}
		buf.WriteByte('"')
	}
	buf.WriteString(`{"id":"`)
	buf.WriteString(string(id))
	uri(`","statusQueryGetUri":"`, "", "")
	uri(`,"sendEventPostUri":"`, raiseEventPath, "")
	uri(`,"terminatePostUri":"`, terminatePath, reasonQuery)
	uri(`,"purgeHistoryDeleteUri":"`, "", "")
	uri(`,"restartPostUri":"`, restartPath, "")
	uri(`,"suspendPostUri":"`, suspendPath, reasonQuery)
	uri(`,"resumePostUri":"`, resumePath, reasonQuery)
	if extra == "" {
		return base
	}
	return base + "?" + extra
}

// needsPathEscape reports whether url.PathEscape may change s: false when
// s holds only unreserved characters, which it keeps as they are (ids
// nearly always), so the common case skips its scan and copy.
func needsPathEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '~':
		default:
			return true
		}
	}
	return false
}

// plainJSON reports whether s is written in JSON as it is, between quotes:
// printable ASCII without quotes or backslashes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// requestURL is the absolute URL of the request itself (for Location on a
// 202 status).
func requestURL(r *http.Request) string {
	scheme, host := origin(r)
	return scheme + "://" + host + r.URL.RequestURI()
}

// appendStatus writes to buf the JSON of newStatusPayload(st, showInput)
// exactly as marshal writes it, without reflection and without building
// the payload: GET status is the API's busiest request, and marshal and
// the payload's allocations were a tenth of its CPU. It reports false,
// buf as it was, when a raw JSON value is not valid JSON: marshal then
// fails on it as it always did. TestAppendStatusIsMarshal holds the two
// to the same bytes.
func appendStatus(buf *bytes.Buffer, st *interpreter.InstanceStatus, showInput bool) bool {
	start := buf.Len()
	var scratch [40]byte // a formatted time or integer
	buf.WriteString(`{"name":`)
	appendString(buf, st.Name)
	buf.WriteString(`,"instanceId":`)
	appendString(buf, string(st.ID))
	buf.WriteString(`,"runtimeStatus":`)
	appendString(buf, string(st.Status))
	var input json.RawMessage
	if showInput {
		input = st.Input
	}
	buf.WriteString(`,"input":`)
	ok := appendRaw(buf, input)
	buf.WriteString(`,"customStatus":`)
	ok = ok && appendRaw(buf, st.CustomStatus)
	buf.WriteString(`,"output":`)
	ok = ok && appendRaw(buf, st.Output)
	if !ok {
		buf.Truncate(start)
		return false
	}
	buf.WriteString(`,"createdTime":`)
	appendTime(buf, scratch[:0], st.CreatedTime, dfTime)
	buf.WriteString(`,"lastUpdatedTime":`)
	appendTime(buf, scratch[:0], st.LastUpdatedTime, dfTime)
	if w := st.Pending; w != nil && !st.Status.Terminal() {
		buf.WriteString(`,"currentStep":`)
		appendString(buf, string(w.StepID))
		buf.WriteString(`,"waitingFor":{"kind":`)
		appendString(buf, string(w.Kind))
		if w.Event != "" {
			buf.WriteString(`,"event":`)
			appendString(buf, w.Event)
		}
		if w.Activity != "" {
			buf.WriteString(`,"activity":`)
			appendString(buf, w.Activity)
		}
		if w.Attempt != 0 {
			buf.WriteString(`,"attempt":`)
			buf.Write(strconv.AppendInt(scratch[:0], int64(w.Attempt), 10))
		}
		if w.Deadline != nil && !w.Deadline.IsZero() {
			buf.WriteString(`,"until":`)
			appendTime(buf, scratch[:0], *w.Deadline, fineTime)
		}
		appendStrings(buf, `,"events":`, w.Events)
		if w.All {
			buf.WriteString(`,"all":true`)
		}
		appendStrings(buf, `,"received":`, w.Got)
		if w.Branches != 0 {
			buf.WriteString(`,"branches":`)
			buf.Write(strconv.AppendInt(scratch[:0], int64(w.Branches), 10))
		}
		if w.Kind == interpreter.WaitBranches {
			buf.WriteString(`,"done":`)
			buf.Write(strconv.AppendInt(scratch[:0], int64(w.Done), 10))
		}
		if w.Child != "" {
			buf.WriteString(`,"child":`)
			appendString(buf, string(w.Child))
		}
		buf.WriteByte('}')
	} else {
		buf.WriteString(`,"currentStep":null,"waitingFor":null`)
	}
	buf.WriteString(`,"definitionHash":`)
	appendString(buf, st.DefHash)
	buf.WriteString(`,"revision":`)
	buf.Write(strconv.AppendInt(scratch[:0], st.Revision, 10))
	buf.WriteByte('}')
	return true
}

// appendStrings writes key and ss as a JSON array of strings, nothing
// when ss is empty (omitempty).
func appendStrings(buf *bytes.Buffer, key string, ss []string) {
	if len(ss) == 0 {
		return
	}
	buf.WriteString(key)
	buf.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			buf.WriteByte(',')
		}
		appendString(buf, s)
	}
	buf.WriteByte(']')
}

// appendString writes s as a JSON string the way marshal does. Strings of
// printable ASCII without quotes or backslashes (ids, names, hashes,
// statuses: nearly all) are written as they are; any other goes through
// encoding/json, so the escaping rules stay its own.
func appendString(buf *bytes.Buffer, s string) {
	if !plainJSON(s) {
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)           // a string always encodes
		buf.Truncate(buf.Len() - 1) // Encode's newline
		return
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

// appendRaw writes a raw JSON value the way marshal does: null when nil,
// else compacted; false when it is not valid JSON.
func appendRaw(buf *bytes.Buffer, v json.RawMessage) bool {
	if v == nil {
		buf.WriteString("null")
		return true
	}
	return json.Compact(buf, v) == nil
}

// appendTime writes fmtTime(t, layout) as a JSON string, formatting into
// scratch instead of a new string.
func appendTime(buf *bytes.Buffer, scratch []byte, t time.Time, layout string) {
	buf.WriteByte('"')
	if !t.IsZero() {
		buf.Write(t.UTC().AppendFormat(scratch, layout))
	}
	buf.WriteByte('"')
}
