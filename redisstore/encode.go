package redisstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

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

// stateFields encodes the parts of a state that every write stores.
func stateFields(st *interpreter.State) (metaJSON, rtJSON []byte, err error) {
	metaJSON, err = json.Marshal(meta{
		Name: st.Name, Def: st.DefHash,
		Created: ms(st.CreatedTime), Updated: ms(st.LastUpdatedTime),
		Pending: st.Pending,
	})
	if err != nil {
		return nil, nil, err
	}
	rt := runtime{
		Vars: st.Vars, Cursor: st.Cursor, Buffered: st.Buffered, Held: st.Held, Seq: st.Seq,
		MsgSeq: st.MsgSeq, Early: st.Early,
		Threads: st.Threads, Joins: st.Joins, Timeout: st.Timeout, Gen: st.Generation, Parent: st.Parent,
		Trace: st.TraceParent,
	}
	if st.Generation > 0 {
		rt.Input = st.Input
	}
	rtJSON, err = json.Marshal(rt)
	return metaJSON, rtJSON, err
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

// decodeWork decodes a work stream entry: i = instance id, e = event JSON.
func decodeWork(id string, p int, values map[string]any) (interpreter.WorkItem, error) {
	inst, _ := values["i"].(string)
	ev, _ := values["e"].(string)
	it := interpreter.WorkItem{ID: id, Partition: p, Instance: interpreter.InstanceID(inst)}
	if inst == "" {
		return it, fmt.Errorf("redisstore: work item %s has no instance", id)
	}
	if err := json.Unmarshal([]byte(ev), &it.Event); err != nil {
		return it, fmt.Errorf("redisstore: work item %s: bad event: %w", id, err)
	}
	if q, ok := values["q"].(string); ok {
		seq, err := strconv.ParseInt(q, 10, 64)
		if err != nil {
			return it, fmt.Errorf("redisstore: work item %s: bad message number %q", id, q)
		}
		it.Event.Seq = seq
	}
	return it, nil
}

// The append functions below write JSON byte for byte as encoding/json
// does for the same values (TestEncodersAreMarshal holds them to it), into
// a buffer the caller owns: reflection, boxing and a fresh slice per value
// were most of what a commit allocated. html says whether <, > and & in
// strings are escaped, as json.Marshal does and an Encoder with
// SetEscapeHTML(false) does not.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!html || (b != '<' && b != '>' && b != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

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
		dst = appendJSONString(dst, s, html)
	}
	return append(dst, ']')
}

// appendMarshal appends json.Marshal(v): the encodings not written by hand.
func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(dst, b...), err
}
