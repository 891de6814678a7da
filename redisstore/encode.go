package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

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
