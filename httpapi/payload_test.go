package httpapi

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

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

// TestAppendCheckStatusIsMarshal holds appendCheckStatus, and the answers
// start and signal-with-start build on it, to marshal of managementURLs
// and signalPayload: the same bytes and the same Location.
func TestAppendCheckStatusIsMarshal(t *testing.T) {
	type req struct {
		target string
		header map[string]string
		tls    bool
	}
	reqs := []req{
		{target: "/x", header: nil},
		{target: "/x?code=k3y", header: nil},
		{target: "/x?code=a%26b+c%3D%22d", header: nil},
		{target: "/x", header: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "API.example.com:8443, other"}},
		{target: "/x", header: map[string]string{"X-Forwarded-Host": `quo"te.example`}},
		{target: "/x", header: map[string]string{"X-Forwarded-Host": "bad/host"}},
		{target: "/x?code=k", tls: true},
	}
	ids := []interpreter.InstanceID{"order-1", "a.b_c~d", "with space", "quo\"te", "é\u2028x", "a+b&c=d;e,f:g@h$i", "%41"}
	for _, r := range reqs {
		for _, id := range ids {
			hr := httptest.NewRequest("POST", r.target, nil)
			for k, v := range r.header {
				hr.Header.Set(k, v)
			}
			if r.tls {
				hr.TLS = &tls.ConnectionState{}
			}
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = hr
			p := managementURLs(c, id)
			for _, started := range []bool{true, false} {
				want, err := marshal(signalPayload{checkStatusPayload: p, Started: started})
				if err != nil {
					t.Fatal(err)
				}
				buf := bytes.NewBufferString("prefix")
				loc := appendCheckStatus(buf, c, id)
				if loc != p.StatusQueryGetURI {
					t.Errorf("%v %q: Location %q, want %q", r, id, loc, p.StatusQueryGetURI)
				}
				plain := buf.String() + "}"
				if want, _ := marshal(p); plain != "prefix"+string(want) {
					t.Errorf("%v %q:\nappendCheckStatus %s\nmarshal           %s", r, id, plain[len("prefix"):], want)
				}
				fmt.Fprintf(buf, `,"started":%v}`, started)
				if buf.String() != "prefix"+string(want) {
					t.Errorf("%v %q started=%v:\nappendCheckStatus %s\nmarshal           %s", r, id, started, buf.String()[len("prefix"):], want)
				}
			}
		}
	}
}
