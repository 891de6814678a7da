package redisstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

func TestHistoryEncodingRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.UTC)
	in := []interpreter.HistoryEvent{
		{Type: "ExecutionStarted", Timestamp: at, Name: "Wf", Data: json.RawMessage(`{"a":[1,"<&>"]}`)},
		{Type: "TaskFailed", Timestamp: at.Add(1500 * time.Millisecond), StepID: "s1", Name: "Act", Attempt: 3, Reason: "boom"},
		{Type: "SomethingNew", Timestamp: at.Add(-time.Second), Reason: "only a reason"},
		{Type: "TimerFired", Timestamp: at},
		{Type: "EventRaised", Timestamp: at, Name: "Go", Data: json.RawMessage(`null`)},
	}
	s, err := encodeHistory(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHistory(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]interpreter.HistoryEvent(nil), in...)
	want[4].Data = nil // a null payload reads back as none
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip of %s:\n got %+v\nwant %+v", s, got, want)
	}
	for _, bad := range []string{``, `[]`, `[1]`, `["x",["TS"]]`, `[1,{}]`, `[1,[]]`, `[1,["TS","x"]]`, `[1,["TS",0,5]]`} {
		if _, err := decodeHistory(nil, bad); err == nil {
			t.Errorf("decodeHistory(%s) accepted", bad)
		}
	}
}

// TestHistoryCodes: a code never reads back as another type, and every
// type the interpreter writes has a code (a missing one only costs bytes,
// but is probably an oversight).
func TestHistoryCodes(t *testing.T) {
	if len(histNames) != len(histCodes) {
		t.Fatal("two types share a code")
	}
	for code := range histNames {
		if _, ok := histCodes[code]; ok {
			t.Errorf("code %s is also a type name", code)
		}
	}
}
