package redisstore

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// The hand-written encoders (encode.go, history.go) must write what
// encoding/json writes for the same values: the stored format is theirs.
// These tests compare the two on values built from awkward pieces.

// pieces are the parts random strings and JSON texts are made of: what
// encoding/json escapes (with or without HTML escaping), what it replaces
// and what it keeps.
var pieces = []string{"", "a", "Tokyo", "<b>&</b>", "\"", "\\", "\n\t\r\b\f", "\x00\x1f", "é", "日本",
	"\u2028", "\u2029", "\xff", "\xe2\x80", "😀", "/", "'", " "}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(4) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// randJSON is a valid JSON text, sometimes with whitespace to compact.
func randJSON(r *rand.Rand) json.RawMessage {
	s, _ := json.Marshal(randString(r))
	switch r.IntN(6) {
	case 0:
		return json.RawMessage(`15`)
	case 1:
		return json.RawMessage(` { "a" : [1, 2 ,"<x>"] ,"b":null } `)
	case 2:
		return json.RawMessage(`{"u":"\u003c` + "\u2028" + `&"}`)
	case 3:
		return nil
	}
	return json.RawMessage(s)
}

func randTime(r *rand.Rand) time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(r.Int64N(1e12)) * time.Microsecond)
	switch r.IntN(4) {
	case 0:
		return t.In(time.FixedZone("x", 5*3600+30*60))
	case 1:
		return t.Truncate(time.Second)
	}
	return t
}

// encodeHistoryReflect is encodeHistory as it was written with
// encoding/json, the reference.
func encodeHistoryReflect(hs []interpreter.HistoryEvent) (string, error) {
	t := ms(hs[0].Timestamp)
	out := []any{t}
	for _, h := range hs {
		typ := h.Type
		if c, ok := histCodes[typ]; ok {
			typ = c
		}
		var data any
		if len(h.Data) > 0 {
			data = h.Data
		}
		line := []any{typ, ms(h.Timestamp) - t, string(h.StepID), h.Name, data, h.Attempt, h.Reason}
		n := len(line)
		for n > 1 && isEmptyValue(line[n-1]) {
			n--
		}
		out = append(out, line[:n])
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func isEmptyValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case int:
		return v == 0
	case int64:
		return v == 0
	}
	return false
}

func randHistory(r *rand.Rand) []interpreter.HistoryEvent {
	types := []string{"ExecutionStarted", "TaskCompleted", "TimerCreated", "Unknown<&>", "CustomStatusUpdated"}
	at := randTime(r)
	hs := make([]interpreter.HistoryEvent, 1+r.IntN(4))
	for i := range hs {
		h := &hs[i]
		h.Type = types[r.IntN(len(types))]
		h.Timestamp = at
		if r.IntN(2) == 0 {
			h.Timestamp = at.Add(time.Duration(r.IntN(5000)-1000) * time.Millisecond)
		}
		if r.IntN(2) == 0 {
			h.StepID = dsl.StepID(randString(r))
		}
		if r.IntN(2) == 0 {
			h.Name = randString(r)
		}
		if r.IntN(2) == 0 {
			h.Data = randJSON(r)
		}
		if r.IntN(3) == 0 {
			h.Attempt = r.IntN(3)
		}
		if r.IntN(3) == 0 {
			h.Reason = randString(r)
		}
	}
	return hs
}

func TestHistoryEncodingIsEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	start, offer := ReserveTicketTransitions("a", 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cases := [][]interpreter.HistoryEvent{start.History, offer.History}
	for range 3000 {
		cases = append(cases, randHistory(r))
	}
	for _, hs := range cases {
		want, werr := encodeHistoryReflect(hs)
		got, err := encodeHistory(hs)
		if (err != nil) != (werr != nil) || got != want {
			t.Fatalf("encodeHistory(%+v)\n got %s (%v)\nwant %s (%v)", hs, got, err, want, werr)
		}
	}
	bad := []interpreter.HistoryEvent{{Type: "TaskCompleted", Data: json.RawMessage(`{"a":`)}}
	if _, err := encodeHistory(bad); err == nil {
		t.Error("encodeHistory took invalid JSON data")
	}
}

func TestAppendJSONStringIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		s := randString(r)
		want, _ := json.Marshal(s)
		if got := dsl.AppendJSONString(nil, s, true); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		if got := dsl.AppendJSONString(nil, s, false); string(got)+"\n" != b.String() {
			t.Fatalf("%q without HTML escaping: got %s, want %s", s, got, b.String())
		}
	}
}

func TestAppendJSONTimeIsMarshal(t *testing.T) {
	for _, tm := range []time.Time{
		{}, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -7*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+17)),
	} {
		want, werr := json.Marshal(tm)
		got, err := appendJSONTime(nil, tm)
		if (err != nil) != (werr != nil) || (err == nil && string(got) != string(want)) {
			t.Errorf("%v: got %s (%v), want %s (%v)", tm, got, err, want, werr)
		}
	}
}

func randTimePtr(r *rand.Rand) *time.Time {
	if r.IntN(2) == 0 {
		return nil
	}
	t := randTime(r)
	return &t
}

func randStrings(r *rand.Rand) []string {
	var out []string
	for range r.IntN(3) {
		out = append(out, randString(r))
	}
	return out
}

func randPending(r *rand.Rand) *interpreter.Pending {
	if r.IntN(4) == 0 {
		return nil
	}
	p := &interpreter.Pending{
		Kind: interpreter.WaitKind(randString(r)), StepID: dsl.StepID(randString(r)), Activity: randString(r),
		TaskID: randString(r), Queue: randString(r), Attempt: r.IntN(3), Event: randString(r),
		Events: randStrings(r), All: r.IntN(2) == 0, Got: randStrings(r), TimerID: randString(r),
		Deadline: randTimePtr(r), Branches: r.IntN(3), Done: r.IntN(3) - 1, Child: interpreter.InstanceID(randString(r)),
		WatchID: randString(r), WatchDue: randTimePtr(r), Started: r.IntN(2) == 0, StartBy: randTimePtr(r), Overdue: randTimePtr(r),
	}
	if r.IntN(2) == 0 {
		p.FirstAttempt = randTime(r)
	}
	if r.IntN(5) == 0 {
		p.Events = []string{} // empty, not nil: omitted all the same
	}
	return p
}

func randState(r *rand.Rand) *interpreter.State {
	st := &interpreter.State{
		ID: interpreter.InstanceID(randString(r)), Name: randString(r), DefHash: randString(r),
		Status: interpreter.StatusRunning, Input: randJSON(r), Pending: randPending(r),
		MsgSeq: r.Int64N(3), Seq: r.Int64N(1e6) - 10, Generation: r.IntN(3) - 1,
		Parent: interpreter.InstanceID(randString(r)), TraceParent: randString(r),
		CreatedTime: randTime(r), LastUpdatedTime: randTime(r),
	}
	if n := r.IntN(20); n > 0 {
		st.Vars = map[string]json.RawMessage{}
		for range n {
			st.Vars[randString(r)] = randJSON(r)
		}
	}
	for range r.IntN(3) {
		st.Cursor = append(st.Cursor, interpreter.Frame{Block: dsl.BlockID(randString(r)), Index: r.IntN(5) - 1, Iter: r.IntN(3), Saved: randJSON(r)})
	}
	for range r.IntN(3) {
		st.Buffered = append(st.Buffered, interpreter.BufferedEvent{Name: randString(r), Data: randJSON(r), Time: randTime(r)})
	}
	if r.IntN(5) == 0 {
		st.Held = []interpreter.Event{{Kind: interpreter.EvRaised, Name: randString(r), Time: randTime(r)}}
	}
	if r.IntN(5) == 0 {
		st.Early = []interpreter.Event{{Kind: interpreter.EvRaised, Name: randString(r), Time: randTime(r), Seq: 4}}
	}
	if r.IntN(5) == 0 {
		st.Threads = []interpreter.Thread{{ID: "fan/0", Branch: 0, Pending: randPending(r), Vars: map[string]json.RawMessage{"x": randJSON(r)}}}
		st.Joins = []interpreter.Join{{StepID: "fan", Total: 2, Results: []json.RawMessage{nil, json.RawMessage(`{}`)}}}
	}
	if r.IntN(3) == 0 {
		st.Timeout = &interpreter.Timer{ID: randString(r), Due: randTime(r)}
	}
	for k, v := range st.Vars {
		if v == nil {
			st.Vars[k] = json.RawMessage(`null`) // a variable always has a value
		}
	}
	return st
}

// stateFieldsReflect is stateFields as it was written with json.Marshal,
// the reference.
func stateFieldsReflect(st *interpreter.State) (metaJSON, rtJSON []byte, err error) {
	metaJSON, err = json.Marshal(meta{Name: st.Name, Def: st.DefHash, Created: ms(st.CreatedTime), Updated: ms(st.LastUpdatedTime), Pending: st.Pending})
	if err != nil {
		return nil, nil, err
	}
	rt := runtime{
		Vars: st.Vars, Cursor: st.Cursor, Buffered: st.Buffered, Held: st.Held, Seq: st.Seq,
		MsgSeq: st.MsgSeq, Early: st.Early, Threads: st.Threads, Joins: st.Joins, Timeout: st.Timeout,
		Gen: st.Generation, Parent: st.Parent, Trace: st.TraceParent,
	}
	if st.Generation > 0 {
		rt.Input = st.Input
	}
	rtJSON, err = json.Marshal(rt)
	return metaJSON, rtJSON, err
}

// TestEncodersAreMarshal holds the hand-written encodings of the state,
// the task and the status notice to json.Marshal, and to the structs'
// fields: a field added to one of them has to be taught to its encoder
// (then the count here goes up).
func TestEncodersAreMarshal(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
	}{
		{meta{}, 5}, {runtime{}, 14}, {interpreter.Pending{}, 21}, {interpreter.Frame{}, 4},
		{interpreter.BufferedEvent{}, 3}, {interpreter.Timer{}, 2}, {interpreter.ScheduleTask{}, 13},
		{interpreter.StatusChange{}, 6},
	} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.want {
			t.Errorf("%T has %d fields, its hand-written encoder (encode.go) knows %d: teach it the new ones", c.v, n, c.want)
		}
	}

	r := rand.New(rand.NewPCG(5, 6))
	start, offer := ReserveTicketTransitions("a", 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	states := []*interpreter.State{start.State, offer.State, {}}
	for range 3000 {
		states = append(states, randState(r))
	}
	for _, st := range states {
		wm, wr, werr := stateFieldsReflect(st)
		gm, gr, err := stateFields(st)
		if (err != nil) != (werr != nil) || string(gm) != string(wm) || string(gr) != string(wr) {
			t.Fatalf("stateFields(%+v)\n got %s\n     %s (%v)\nwant %s\n     %s (%v)", st, gm, gr, err, wm, wr, werr)
		}
		task := &interpreter.ScheduleTask{
			TaskID: randString(r), Instance: st.ID, Activity: randString(r), Input: randJSON(r), Attempt: r.IntN(3),
			StepID: dsl.StepID(randString(r)), DefHash: st.DefHash, Workflow: st.Name, Queue: randString(r),
			Timeout: time.Duration(r.IntN(3)) * time.Second, ScheduleToStart: time.Duration(r.IntN(2)), Heartbeat: time.Duration(r.IntN(2)) * time.Minute,
			Trace: st.TraceParent,
		}
		want, werr := json.Marshal(task)
		got, err := appendTask(nil, task)
		if (err != nil) != (werr != nil) || (werr == nil && string(got) != string(want)) {
			t.Fatalf("appendTask(%+v)\n got %s (%v)\nwant %s (%v)", task, got, err, want, werr)
		}
		change := &interpreter.StatusChange{Instance: st.ID, Status: st.Status, CustomStatus: randJSON(r), Output: randJSON(r),
			Revision: r.Int64N(100), Time: st.LastUpdatedTime}
		want, werr = json.Marshal(change)
		got, err = appendStatusChange(nil, change)
		if (err != nil) != (werr != nil) || (werr == nil && string(got) != string(want)) {
			t.Fatalf("appendStatusChange(%+v)\n got %s (%v)\nwant %s (%v)", change, got, err, want, werr)
		}
	}
	for _, bad := range []*interpreter.State{
		{Vars: map[string]json.RawMessage{"a": json.RawMessage(`{`)}},
		{Vars: map[string]json.RawMessage{"a": {}}},
		{Cursor: []interpreter.Frame{{Saved: json.RawMessage(`tru`)}}},
		{Pending: &interpreter.Pending{Deadline: ptr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}},
	} {
		if _, _, err := stateFields(bad); err == nil {
			t.Errorf("stateFields(%+v) took it", bad)
		}
	}
}
