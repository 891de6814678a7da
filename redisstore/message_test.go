package redisstore_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// A transition that applies a client message straight from the API
// (Transition.Message) commits only when the store has numbered no message
// of the instance since the state it was computed from: one queued by a
// raise in between comes first, and the direct one conflicts, writing
// nothing. Committed, it counts as numbered: the next queued raise gets
// the number after it.
func TestCommitMessage(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	n := newInstance("i", t0, `1`)
	n.First = firstStep(n.State)
	if err := e.s.CreateInstance(e.ctx, n); err != nil {
		t.Fatal(err)
	}
	direct := func(from *interpreter.State, msg int64) *interpreter.Transition {
		next := *from
		next.MsgSeq = msg
		next.CustomStatus = json.RawMessage(`{"msg":` + string(rune('0'+msg)) + `}`)
		return &interpreter.Transition{State: &next, FromRevision: from.Revision, Message: msg, StatusChanged: true,
			History: []interpreter.HistoryEvent{{Type: "EventRaised", Name: "Go", Timestamp: t0}}}
	}
	st := e.load("i")

	// Raised and queued in between: number 1 is taken.
	if err := e.s.RaiseEvent(e.ctx, "i", "Go", json.RawMessage(`1`), t0); err != nil {
		t.Fatal(err)
	}
	if errs := e.commit(direct(st, 1)); !errors.Is(errs[0], interpreter.ErrConflict) {
		t.Fatalf("direct message 1 after a queued message 1: %v", errs[0])
	}
	if got := e.load("i"); got.Revision != st.Revision || string(got.CustomStatus) != string(st.CustomStatus) {
		t.Fatalf("a conflicting commit wrote: revision %d, custom status %s", got.Revision, got.CustomStatus)
	}
	// The engine applies the queued one (number 1)...
	work := e.readAll("engine")
	if len(work) != 1 || work[0].Event.Seq != 1 {
		t.Fatalf("work = %+v", work)
	}
	applied := direct(st, 1)
	applied.Message, applied.WorkID = 0, work[0].ID
	if errs := e.commit(applied); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// ...and then a direct one numbered 2 commits.
	st = e.load("i")
	if errs := e.commit(direct(st, 2)); errs[0] != nil {
		t.Fatalf("direct message 2: %v", errs[0])
	}
	if got := e.load("i"); got.MsgSeq != 2 || string(got.CustomStatus) != `{"msg":2}` {
		t.Fatalf("after the direct message: mseq %d, custom status %s", got.MsgSeq, got.CustomStatus)
	}
	// The next queued raise is number 3.
	if err := e.s.RaiseEvent(e.ctx, "i", "Go", json.RawMessage(`3`), t0); err != nil {
		t.Fatal(err)
	}
	if work := e.readAll("engine"); len(work) != 1 || work[0].Event.Seq != 3 {
		t.Fatalf("work after the direct message = %+v", work)
	}
}

// A transition that applies a task outcome and a client message together
// (the engine folds the two when they meet in one group commit)
// acknowledges the task and numbers the message in its one commit; when
// the task was acknowledged already it writes nothing, the message's
// number included.
func TestCommitTaskAndMessage(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.create("a", t0)
	e.readAll("engine")
	ref := e.takeLocalTask("a", "t1")
	numbered := func(msg int64) *interpreter.Transition {
		tr := e.transition("a", "", func(s *interpreter.State) { s.MsgSeq = msg })
		tr.TaskAck, tr.Message = &ref, msg
		return tr
	}
	if errs := e.commit(numbered(1)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	e.taskGone(ref)
	rev := e.load("a").Revision
	if errs := e.commit(numbered(2)); !errors.Is(errs[0], interpreter.ErrDuplicate) {
		t.Fatalf("the task's outcome again, with message 2: %v", errs[0])
	}
	if got := e.load("a"); got.Revision != rev || got.MsgSeq != 1 {
		t.Fatalf("the refused commit wrote: revision %d, mseq %d", got.Revision, got.MsgSeq)
	}
	// Message 1 was numbered by the commit, 2 by none: the next raise is 2.
	if err := e.s.RaiseEvent(e.ctx, "a", "Go", json.RawMessage(`2`), t0); err != nil {
		t.Fatal(err)
	}
	if work := e.readAll("engine"); len(work) != 1 || work[0].Event.Seq != 2 {
		t.Fatalf("work after the fold = %+v", work)
	}
}
