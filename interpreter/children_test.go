package interpreter

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// childFake is a Store (unused methods panic) with the child methods the
// engine's after-commit hook uses, recording what it is asked.
type childFake struct {
	Store
	defs    map[string]string // name → latest hash
	sources map[string][]byte // hash → source
	status  map[InstanceID]*InstanceStatus
	created []NewInstance
	raised  []ChildResult
	control []Event
}

func (f *childFake) Partitions() int { return 1 }

func (f *childFake) LatestDefinition(_ context.Context, name string) (string, error) {
	if h, ok := f.defs[name]; ok {
		return h, nil
	}
	return "", ErrNotFound
}

func (f *childFake) LoadDefinition(_ context.Context, _, hash string) ([]byte, error) {
	return f.sources[hash], nil
}

func (f *childFake) CreateInstance(_ context.Context, n NewInstance) error {
	f.created = append(f.created, n)
	return nil
}

func (f *childFake) FetchStatus(_ context.Context, id InstanceID) (*InstanceStatus, error) {
	if s, ok := f.status[id]; ok {
		return s, nil
	}
	return nil, ErrNotFound
}

func (f *childFake) RaiseEvent(_ context.Context, _ InstanceID, name string, data json.RawMessage, _ time.Time) error {
	if name != ChildEvent {
		panic("not a child event: " + name)
	}
	var r ChildResult
	json.Unmarshal(data, &r)
	f.raised = append(f.raised, r)
	return nil
}

func (f *childFake) SendControl(_ context.Context, _ InstanceID, ev Event) error {
	f.control = append(f.control, ev)
	return nil
}

func TestAfterCommitRunsCallSteps(t *testing.T) {
	src := []byte("name: Ship\ninput: {type: string}\nsteps:\n  - return: ${ input }\n")
	def, err := dsl.Parse("ship.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	f := &childFake{
		defs:    map[string]string{"Ship": def.Hash},
		sources: map[string][]byte{def.Hash: src},
		status:  map[InstanceID]*InstanceStatus{"p:9": {ID: "p:9", Status: StatusCompleted, Output: json.RawMessage(`"done"`)}},
	}
	e := NewEngine(f, NewCatalog(f), EngineOptions{Clock: func() time.Time { return t0 }})
	ctx := context.Background()
	commit := func(st *State, cmds ...Command) {
		ts := []*Transition{{State: st, Commands: append([]Command{&StartTimer{ID: "w1", Due: t0}}, cmds...)}}
		after := takeAfterCommit(ts)
		if len(ts[0].Commands) != 1 {
			t.Fatalf("the store would see %v", ts[0].Commands)
		}
		e.afterCommit(ctx, ts[0], after, 0)
	}
	running := &State{ID: "p", Status: StatusRunning}

	// A new child is created at the definition's latest version, knowing its parent.
	commit(running, &StartChild{ID: "p:1", Parent: "p", Workflow: "Ship", Input: json.RawMessage(`"a"`)})
	if len(f.created) != 1 || f.created[0].State.ID != "p:1" || f.created[0].State.Parent != "p" || f.created[0].State.DefHash != def.Hash {
		t.Fatalf("created %+v", f.created)
	}
	// A child that already finished: its end is sent again.
	commit(running, &StartChild{ID: "p:9", Parent: "p", Workflow: "Ship", Input: json.RawMessage(`"a"`)})
	// Unknown workflow and bad input: the call fails at once.
	commit(running, &StartChild{ID: "p:2", Parent: "p", Workflow: "Nope"})
	commit(running, &StartChild{ID: "p:3", Parent: "p", Workflow: "Ship", Input: json.RawMessage(`3`)})
	if len(f.raised) != 3 || f.raised[0].Child != "p:9" || string(f.raised[0].Output) != `"done"` ||
		f.raised[1].Status != StatusFailed || f.raised[2].Status != StatusFailed || len(f.created) != 1 {
		t.Fatalf("raised %+v created %d", f.raised, len(f.created))
	}
	// Terminate a child; a child that ends tells its parent.
	commit(running, &TerminateChild{ID: "p:1", Reason: "stop"})
	if len(f.control) != 1 || f.control[0].Kind != EvTerminate || f.control[0].Reason != "stop" {
		t.Fatalf("control %+v", f.control)
	}
	commit(&State{ID: "p:1", Parent: "p", Status: StatusCompleted, Output: json.RawMessage(`"a"`)})
	if last := f.raised[len(f.raised)-1]; last.Child != "p:1" || last.Status != StatusCompleted || string(last.Output) != `"a"` {
		t.Fatalf("raised %+v", f.raised)
	}
}
