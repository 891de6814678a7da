package redisstore

import (
	"encoding/json"
	"math/rand/v2"
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
		if got := appendJSONString(nil, s, true); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		if got := appendJSONString(nil, s, false); string(got)+"\n" != b.String() {
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
