package redisstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// Stored encodings. Times are unix milliseconds; JSON keys are short
// because every instance carries them.

// meta is the fMeta field: what GET status shows besides the payloads.
type meta struct {
	Name    string               `json:"n"`
	Def     string               `json:"d"`
	Created int64                `json:"c"`
	Updated int64                `json:"u"`
	Pending *interpreter.Pending `json:"p,omitempty"`
}

// runtime is the fRuntime field: what only the engine reads.
type runtime struct {
	Vars     map[string]json.RawMessage  `json:"v,omitempty"`
	Cursor   []interpreter.Frame         `json:"c,omitempty"`
	Buffered []interpreter.BufferedEvent `json:"b,omitempty"`
	Held     []interpreter.Event         `json:"h,omitempty"`
	MsgSeq   int64                       `json:"q,omitempty"`
	Early    []interpreter.Event         `json:"e,omitempty"`
	Seq      int64                       `json:"s,omitempty"`
	Threads  []interpreter.Thread        `json:"t,omitempty"`
	Joins    []interpreter.Join          `json:"j,omitempty"`
	Timeout  *interpreter.Timer          `json:"to,omitempty"`
	Gen      int                         `json:"g,omitempty"`
	Parent   interpreter.InstanceID      `json:"pa,omitempty"`
	Trace    string                      `json:"tr,omitempty"` // State.TraceParent
	// Input is the current run's input after a continueAsNew (Gen > 0);
	// the commit that continues it writes the hash's input field too, so
	// GET status shows it.
	Input json.RawMessage `json:"in,omitempty"`
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// terminalStatuses are the finished statuses, passed to the scripts so
// that the Lua code holds no list of its own.
var terminalStatuses = func() []any {
	var out []any
	for _, s := range []interpreter.RuntimeStatus{
		interpreter.StatusPending, interpreter.StatusRunning, interpreter.StatusSuspended,
		interpreter.StatusCompleted, interpreter.StatusFailed, interpreter.StatusTerminated,
	} {
		if s.Terminal() {
			out = append(out, string(s))
		}
	}
	return out
}()

// stateFields encodes the parts of a state that every write stores: the
// meta and the runtime field.
func stateFields(st *interpreter.State) (metaJSON, rtJSON []byte, err error) {
	b, err := appendMeta(make([]byte, 0, stateSize(st)), st)
	if err != nil {
		return nil, nil, err
	}
	n := len(b)
	if b, err = appendRuntime(b, st); err != nil {
		return nil, nil, err
	}
	return b[:n:n], b[n:], nil
}

// stateSize is about the size of st's meta and runtime JSON, so that one
// allocation usually holds both.
func stateSize(st *interpreter.State) int {
	n := 256 + len(st.Name) + len(st.DefHash) + len(st.TraceParent) + 48*len(st.Cursor)
	for name, v := range st.Vars {
		n += 4 + len(name) + len(v)
	}
	if st.Generation > 0 {
		n += len(st.Input)
	}
	return n
}

// raw turns an absent or empty JSON value into "" for the scripts.
func raw(v json.RawMessage) string { return string(v) }

// statusFields are the hash fields FetchStatus reads: never the runtime.
var statusFields = []string{fStatus, fRev, fMeta, fOutput, fCustom, fInput}

// stateFieldNames are the hash fields LoadStates reads.
var stateFieldNames = []string{fStatus, fRev, fMeta, fOutput, fCustom, fInput, fRuntime}

// decodeStatus decodes the HMGET reply of statusFields (or a prefix of
// stateFieldNames); nil when the instance does not exist.
func decodeStatus(id interpreter.InstanceID, vals []any) (*interpreter.InstanceStatus, error) {
	st, ok := vals[0].(string)
	if !ok {
		return nil, nil
	}
	s := &interpreter.InstanceStatus{ID: id, Status: interpreter.RuntimeStatus(st)}
	if v, ok := vals[1].(string); ok {
		rev, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redisstore: instance %s: bad revision %q", id, v)
		}
		s.Revision = rev
	}
	if v, ok := vals[2].(string); ok {
		// By hand when it can (parseMeta): encoding/json's reflection was
		// a tenth of GET status's CPU.
		var m meta
		if !parseMeta(v, &m) {
			m = meta{}
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				return nil, fmt.Errorf("redisstore: instance %s: bad meta: %w", id, err)
			}
		}
		s.Name, s.DefHash, s.Pending = m.Name, m.Def, m.Pending
		s.CreatedTime, s.LastUpdatedTime = fromMS(m.Created), fromMS(m.Updated)
	}
	s.Output = rawField(vals[3])
	s.CustomStatus = rawField(vals[4])
	if len(vals) > 5 {
		s.Input = rawField(vals[5])
	}
	return s, nil
}

func rawField(v any) json.RawMessage {
	if s, ok := v.(string); ok && s != "" {
		return json.RawMessage(s)
	}
	return nil
}

// decodeState decodes the HMGET reply of stateFieldNames.
func decodeState(id interpreter.InstanceID, vals []any) (*interpreter.State, error) {
	s, err := decodeStatus(id, vals)
	if s == nil || err != nil {
		return nil, err
	}
	st := &interpreter.State{
		ID: id, Name: s.Name, DefHash: s.DefHash, Status: s.Status, Revision: s.Revision,
		Input: s.Input, Output: s.Output, CustomStatus: s.CustomStatus, Pending: s.Pending,
		CreatedTime: s.CreatedTime, LastUpdatedTime: s.LastUpdatedTime,
	}
	if v, ok := vals[6].(string); ok && v != "" {
		var rt runtime
		if err := json.Unmarshal([]byte(v), &rt); err != nil {
			return nil, fmt.Errorf("redisstore: instance %s: bad runtime: %w", id, err)
		}
		st.Vars, st.Cursor, st.Buffered, st.Held, st.Seq = rt.Vars, rt.Cursor, rt.Buffered, rt.Held, rt.Seq
		st.MsgSeq, st.Early = rt.MsgSeq, rt.Early
		st.Threads, st.Joins, st.Timeout, st.Generation, st.Parent = rt.Threads, rt.Joins, rt.Timeout, rt.Gen, rt.Parent
		st.TraceParent = rt.Trace
		if rt.Gen > 0 {
			st.Input = rt.Input
		}
	}
	return st, nil
}

// decodeWork decodes a work stream entry into it (a zero WorkItem): i =
// instance id, e = event JSON.
func decodeWork(it *interpreter.WorkItem, id string, p int, values map[string]any) error {
	inst, _ := values["i"].(string)
	ev, _ := values["e"].(string)
	it.ID, it.Partition, it.Instance = id, p, interpreter.InstanceID(inst)
	if inst == "" {
		return fmt.Errorf("redisstore: work item %s has no instance", id)
	}
	if err := json.Unmarshal(stringBytes(ev), &it.Event); err != nil {
		return fmt.Errorf("redisstore: work item %s: bad event: %w", id, err)
	}
	if q, ok := values["q"].(string); ok {
		seq, err := strconv.ParseInt(q, 10, 64)
		if err != nil {
			return fmt.Errorf("redisstore: work item %s: bad message number %q", id, q)
		}
		it.Event.Seq = seq
	}
	return nil
}

// The append functions below write JSON byte for byte as encoding/json
// does for the same values (TestEncodersAreMarshal holds them to it), into
// a buffer the caller owns: reflection, boxing and a fresh slice per value
// were most of what a commit allocated. html says whether <, > and & in
// strings are escaped, as json.Marshal does and an Encoder with
// SetEscapeHTML(false) does not. Strings are dsl.AppendJSONString's.

// appendRawJSON appends v as encoding/json writes a json.RawMessage: null
// when nil, else compacted (and HTML-escaped when html), an error when it
// is not JSON. Text with nothing to change, as the interpreter writes it,
// is only validated.
func appendRawJSON(dst []byte, v json.RawMessage, html bool) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	plain := true
	for _, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r':
			plain = false
		case '<', '>', '&', 0xE2: // 0xE2 starts U+2028 and U+2029
			plain = plain && !html
		}
		if !plain {
			break
		}
	}
	if plain {
		if !json.Valid(v) {
			return dst, errors.New("redisstore: invalid JSON value")
		}
		return append(dst, v...), nil
	}
	if html {
		b, err := json.Marshal(v) // compacts and escapes
		return append(dst, b...), err
	}
	var buf bytes.Buffer
	err := json.Compact(&buf, v)
	return append(dst, buf.Bytes()...), err
}

// appendJSONTime appends t as time.Time's MarshalJSON does.
func appendJSONTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		b, err := t.MarshalJSON() // the error it gives
		return append(dst, b...), err
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		b, err := t.MarshalJSON()
		return append(dst, b...), err
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// appendJSONStrings appends ss as a JSON array of strings.
func appendJSONStrings(dst []byte, ss []string, html bool) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = dsl.AppendJSONString(dst, s, html)
	}
	return append(dst, ']')
}

// appendMarshal appends json.Marshal(v): the encodings not written by hand.
func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(dst, b...), err
}

// object writes a JSON object's members: key starts the next one.
type object struct {
	b []byte
	n int // members written
}

func (o *object) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *object) str(k, v string)       { o.key(k); o.b = dsl.AppendJSONString(o.b, v, true) }
func (o *object) num(k string, v int64) { o.key(k); o.b = strconv.AppendInt(o.b, v, 10) }

func (o *object) raw(k string, v json.RawMessage) (err error) {
	o.key(k)
	o.b, err = appendRawJSON(o.b, v, true)
	return err
}

func (o *object) time(k string, t time.Time) (err error) {
	o.key(k)
	o.b, err = appendJSONTime(o.b, t)
	return err
}

// The hand-written encodings below are json.Marshal of the named struct;
// each lists the struct's fields in order with their tags' names and
// omitempty rules, and TestEncodersAreMarshal fails when one of the
// structs gains a field they do not know.

// appendMeta appends the meta JSON of st.
func appendMeta(dst []byte, st *interpreter.State) ([]byte, error) {
	o := object{b: append(dst, '{')}
	o.str("n", st.Name)
	o.str("d", st.DefHash)
	o.num("c", ms(st.CreatedTime))
	o.num("u", ms(st.LastUpdatedTime))
	if st.Pending != nil {
		o.key("p")
		var err error
		if o.b, err = appendPending(o.b, st.Pending); err != nil {
			return o.b, err
		}
	}
	return append(o.b, '}'), nil
}

// appendPending appends json.Marshal(p).
func appendPending(dst []byte, p *interpreter.Pending) ([]byte, error) {
	o := object{b: append(dst, '{')}
	var err error
	o.str("kind", string(p.Kind))
	o.str("step", string(p.StepID))
	if p.Activity != "" {
		o.str("activity", p.Activity)
	}
	if p.TaskID != "" {
		o.str("task", p.TaskID)
	}
	if p.Queue != "" {
		o.str("queue", p.Queue)
	}
	if p.Attempt != 0 {
		o.num("attempt", int64(p.Attempt))
	}
	if !p.FirstAttempt.IsZero() {
		if err = o.time("first", p.FirstAttempt); err != nil {
			return o.b, err
		}
	}
	if p.Event != "" {
		o.str("event", p.Event)
	}
	if len(p.Events) > 0 {
		o.key("events")
		o.b = appendJSONStrings(o.b, p.Events, true)
	}
	if p.All {
		o.key("all")
		o.b = append(o.b, "true"...)
	}
	if len(p.Got) > 0 {
		o.key("got")
		o.b = appendJSONStrings(o.b, p.Got, true)
	}
	if p.TimerID != "" {
		o.str("timer", p.TimerID)
	}
	if p.Deadline != nil {
		if err = o.time("until", *p.Deadline); err != nil {
			return o.b, err
		}
	}
	if p.Branches != 0 {
		o.num("branches", int64(p.Branches))
	}
	if p.Done != 0 {
		o.num("done", int64(p.Done))
	}
	if p.Child != "" {
		o.str("child", string(p.Child))
	}
	if p.WatchID != "" {
		o.str("watch", p.WatchID)
	}
	if p.WatchDue != nil {
		if err = o.time("watchDue", *p.WatchDue); err != nil {
			return o.b, err
		}
	}
	if p.Started {
		o.key("started")
		o.b = append(o.b, "true"...)
	}
	if p.StartBy != nil {
		if err = o.time("startBy", *p.StartBy); err != nil {
			return o.b, err
		}
	}
	if p.Overdue != nil {
		if err = o.time("overdue", *p.Overdue); err != nil {
			return o.b, err
		}
	}
	return append(o.b, '}'), nil
}

// appendRuntime appends the runtime JSON of st.
func appendRuntime(dst []byte, st *interpreter.State) ([]byte, error) {
	o := object{b: append(dst, '{')}
	var err error
	if len(st.Vars) > 0 {
		o.key("v")
		if o.b, err = appendVars(o.b, st.Vars); err != nil {
			return o.b, err
		}
	}
	if len(st.Cursor) > 0 {
		o.key("c")
		if o.b, err = appendCursor(o.b, st.Cursor); err != nil {
			return o.b, err
		}
	}
	if len(st.Buffered) > 0 {
		o.key("b")
		o.b = append(o.b, '[')
		for i := range st.Buffered {
			e := &st.Buffered[i]
			if i > 0 {
				o.b = append(o.b, ',')
			}
			eo := object{b: append(o.b, '{')}
			eo.str("name", e.Name)
			if err = eo.raw("data", e.Data); err != nil {
				return eo.b, err
			}
			if err = eo.time("time", e.Time); err != nil {
				return eo.b, err
			}
			o.b = append(eo.b, '}')
		}
		o.b = append(o.b, ']')
	}
	// The rest is rare (a suspended instance, parallel branches): left to
	// encoding/json.
	if len(st.Held) > 0 {
		o.key("h")
		if o.b, err = appendMarshal(o.b, st.Held); err != nil {
			return o.b, err
		}
	}
	if st.MsgSeq != 0 {
		o.num("q", st.MsgSeq)
	}
	if len(st.Early) > 0 {
		o.key("e")
		if o.b, err = appendMarshal(o.b, st.Early); err != nil {
			return o.b, err
		}
	}
	if st.Seq != 0 {
		o.num("s", st.Seq)
	}
	if len(st.Threads) > 0 {
		o.key("t")
		if o.b, err = appendMarshal(o.b, st.Threads); err != nil {
			return o.b, err
		}
	}
	if len(st.Joins) > 0 {
		o.key("j")
		if o.b, err = appendMarshal(o.b, st.Joins); err != nil {
			return o.b, err
		}
	}
	if st.Timeout != nil {
		o.key("to")
		to := object{b: append(o.b, '{')}
		to.str("id", st.Timeout.ID)
		if err = to.time("due", st.Timeout.Due); err != nil {
			return to.b, err
		}
		o.b = append(to.b, '}')
	}
	if st.Generation != 0 {
		o.num("g", int64(st.Generation))
	}
	if st.Parent != "" {
		o.str("pa", string(st.Parent))
	}
	if st.TraceParent != "" {
		o.str("tr", st.TraceParent)
	}
	if st.Generation > 0 && len(st.Input) > 0 {
		if err = o.raw("in", st.Input); err != nil {
			return o.b, err
		}
	}
	return append(o.b, '}'), nil
}

// appendVars appends a variables map as encoding/json does: keys sorted.
func appendVars(dst []byte, vars map[string]json.RawMessage) ([]byte, error) {
	var small [16]string
	names := small[:0]
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = append(dst, '{')
	for i, name := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = dsl.AppendJSONString(dst, name, true)
		dst = append(dst, ':')
		var err error
		if dst, err = appendRawJSON(dst, vars[name], true); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendCursor appends json.Marshal(frames).
func appendCursor(dst []byte, frames []interpreter.Frame) ([]byte, error) {
	dst = append(dst, '[')
	for i := range frames {
		f := &frames[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		o := object{b: append(dst, '{')}
		o.str("b", string(f.Block))
		o.num("i", int64(f.Index))
		if f.Iter != 0 {
			o.num("n", int64(f.Iter))
		}
		if len(f.Saved) > 0 {
			if err := o.raw("sv", f.Saved); err != nil {
				return o.b, err
			}
		}
		dst = append(o.b, '}')
	}
	return append(dst, ']'), nil
}

// appendTask appends json.Marshal(c), the task a worker receives.
func appendTask(dst []byte, c *interpreter.ScheduleTask) ([]byte, error) {
	o := object{b: append(dst, '{')}
	o.str("task", c.TaskID)
	o.str("instance", string(c.Instance))
	o.str("activity", c.Activity)
	if err := o.raw("input", c.Input); err != nil {
		return o.b, err
	}
	o.num("attempt", int64(c.Attempt))
	o.str("step", string(c.StepID))
	o.str("def", c.DefHash)
	o.str("workflow", c.Workflow)
	o.str("queue", c.Queue)
	if c.Timeout != 0 {
		o.num("timeout", int64(c.Timeout))
	}
	if c.ScheduleToStart != 0 {
		o.num("scheduleToStart", int64(c.ScheduleToStart))
	}
	if c.Heartbeat != 0 {
		o.num("heartbeat", int64(c.Heartbeat))
	}
	if c.Trace != "" {
		o.str("trace", c.Trace)
	}
	return append(o.b, '}'), nil
}

// appendStatusChange appends json.Marshal(c), the status notice.
func appendStatusChange(dst []byte, c *interpreter.StatusChange) ([]byte, error) {
	o := object{b: append(dst, '{')}
	o.str("instanceId", string(c.Instance))
	o.str("runtimeStatus", string(c.Status))
	if err := o.raw("customStatus", c.CustomStatus); err != nil {
		return o.b, err
	}
	if len(c.Output) > 0 {
		if err := o.raw("output", c.Output); err != nil {
			return o.b, err
		}
	}
	o.num("revision", c.Revision)
	if err := o.time("lastUpdatedTime", c.Time); err != nil {
		return o.b, err
	}
	return append(o.b, '}'), nil
}
