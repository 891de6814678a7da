package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// checkAppendStatus holds appendStatus to marshal(newStatusPayload(...)):
// the same bytes, or both refusing the status.
func checkAppendStatus(t *testing.T, name string, st *interpreter.InstanceStatus) {
	t.Helper()
	for _, showInput := range []bool{true, false} {
		want, werr := marshal(newStatusPayload(st, showInput))
		buf := bytes.NewBufferString("prefix")
		ok := appendStatus(buf, st, showInput)
		switch {
		case werr != nil && ok:
			t.Errorf("%s (showInput %v): marshal fails (%v), appendStatus wrote %s", name, showInput, werr, buf)
		case werr != nil && buf.String() != "prefix":
			t.Errorf("%s (showInput %v): appendStatus refused but left %q", name, showInput, buf)
		case werr == nil && !ok:
			t.Errorf("%s (showInput %v): appendStatus refused what marshal writes: %s", name, showInput, want)
		case werr == nil && buf.String() != "prefix"+string(want):
			t.Errorf("%s (showInput %v):\nappendStatus %s\nmarshal      %s", name, showInput, buf.String()[len("prefix"):], want)
		}
	}
}

func TestAppendStatusIsMarshal(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("x", 3600))
	zero := time.Time{}
	base := func() *interpreter.InstanceStatus {
		return &interpreter.InstanceStatus{
			ID: "order-1", Name: "ReserveTicket", Status: interpreter.StatusRunning, DefHash: "abc123",
			Input: json.RawMessage(`{"user":"u1"}`), CustomStatus: json.RawMessage(`"waiting"`), Output: nil,
			CreatedTime: at, LastUpdatedTime: at.Add(time.Second), Revision: 7,
			Pending: &interpreter.Pending{Kind: "event", StepID: "steps[0]", Event: "Open"},
		}
	}
	cases := map[string]func(*interpreter.InstanceStatus){
		"waiting for an event": func(*interpreter.InstanceStatus) {},
		"no pending":           func(s *interpreter.InstanceStatus) { s.Pending = nil },
		"finished with pending": func(s *interpreter.InstanceStatus) {
			s.Status, s.Output = interpreter.StatusCompleted, json.RawMessage(`[1,2]`)
		},
		"activity attempt and deadline": func(s *interpreter.InstanceStatus) {
			s.Pending = &interpreter.Pending{Kind: "retry", StepID: "steps[2].then[0]", Activity: "Charge", Attempt: 3, Deadline: &at}
		},
		"zero deadline": func(s *interpreter.InstanceStatus) { s.Pending.Deadline = &zero },
		"any of two events": func(s *interpreter.InstanceStatus) {
			s.Pending = &interpreter.Pending{Kind: "event", StepID: "steps[1]", Events: []string{"Paid", "Cancelled"}}
		},
		"all, one received": func(s *interpreter.InstanceStatus) {
			s.Pending = &interpreter.Pending{Kind: "event", StepID: "steps[1]", Events: []string{"B"}, All: true, Got: []string{"A\u2028é"}, Deadline: &at}
		},
		"branches, none done": func(s *interpreter.InstanceStatus) {
			s.Pending = &interpreter.Pending{Kind: interpreter.WaitBranches, StepID: "steps[3]", Branches: 20}
		},
		"branches, some done": func(s *interpreter.InstanceStatus) {
			s.Pending = &interpreter.Pending{Kind: interpreter.WaitBranches, StepID: "steps[3]", Branches: 20, Done: 7}
		},
		"a call's child": func(s *interpreter.InstanceStatus) {
			s.Pending = &interpreter.Pending{Kind: interpreter.WaitChild, StepID: "steps[4]", Child: "order-1:steps[4]", TimerID: "t1", Attempt: 2}
		},
		"zero times": func(s *interpreter.InstanceStatus) { s.CreatedTime, s.LastUpdatedTime = zero, zero },
		"raw with spaces": func(s *interpreter.InstanceStatus) {
			s.Input = json.RawMessage(" { \"a\" : [ 1 , 2 ] ,\n\t\"b\": \"x y\" } ")
			s.Output = json.RawMessage(` null `)
		},
		"raw with html and unicode": func(s *interpreter.InstanceStatus) {
			s.CustomStatus = json.RawMessage(`{"h":"<b>&amp;</b>","u":"\u2028é"}`)
		},
		"invalid input":        func(s *interpreter.InstanceStatus) { s.Input = json.RawMessage(`{"a":`) },
		"invalid output":       func(s *interpreter.InstanceStatus) { s.Output = json.RawMessage(`nope`) },
		"empty custom status":  func(s *interpreter.InstanceStatus) { s.CustomStatus = json.RawMessage{} },
		"negative revision":    func(s *interpreter.InstanceStatus) { s.Revision = -1 << 62 },
		"quotes and escapes":   func(s *interpreter.InstanceStatus) { s.ID = `a"b\c` + "\n\t\b\f\x01\x1f\x7f" },
		"html and separators":  func(s *interpreter.InstanceStatus) { s.Name = "<a href='x'>&</a>\u2028\u2029" },
		"non-ASCII and broken": func(s *interpreter.InstanceStatus) { s.Pending.Event = "événement \xff\xfe 日本" },
	}
	for name, edit := range cases {
		st := base()
		edit(st)
		checkAppendStatus(t, name, st)
	}
}

// TestAppendStatusRandomStrings feeds every string field bytes that JSON
// escapes or that are not UTF-8.
func TestAppendStatusRandomStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	alphabet := []byte("aZ09-_.:/ \"\\<>&'\x00\x01\n\r\t\b\f\x1f\x7f\x80\xbf\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\xff")
	str := func() string {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := range 2000 {
		st := &interpreter.InstanceStatus{
			ID: interpreter.InstanceID(str()), Name: str(), Status: interpreter.RuntimeStatus(str()), DefHash: str(),
			CreatedTime: time.Unix(r.Int64N(1<<33), r.Int64N(1e9)), Revision: r.Int64(),
			Pending: &interpreter.Pending{Kind: interpreter.WaitKind(str()), Event: str(), Activity: str(), Attempt: r.IntN(3),
				Events: []string{str(), str()}[:r.IntN(3)], Got: []string{str()}[:r.IntN(2)], Child: interpreter.InstanceID(str())},
		}
		st.Pending.StepID = dsl.StepID("steps[" + str() + "]")
		checkAppendStatus(t, "random "+string(rune('0'+i%10)), st)
		if t.Failed() {
			return
		}
	}
}
