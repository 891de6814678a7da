package interpreter

// Moving a thread's cursor and reading the step it points at.

import (
	"fmt"

	"github.com/cairnhq/cairn/dsl"
)

// current returns the step a thread's top frame points at.
func (r *run) current(th *Thread) (dsl.Step, bool) {
	if len(th.Cursor) == 0 {
		return nil, false
	}
	return r.stepAt(th.Cursor[len(th.Cursor)-1])
}

func (r *run) stepAt(f Frame) (dsl.Step, bool) {
	block := r.def.Blocks[f.Block]
	if f.Index < 0 || f.Index >= len(block) {
		return nil, false
	}
	return block[f.Index], true
}

func (r *run) currentStepID(th *Thread) dsl.StepID {
	if s, ok := r.current(th); ok {
		return s.Base().ID
	}
	return ""
}

// waitedAt returns the step, of type T, that a waiting thread's cursor
// points at; any other step there is a corrupt state, an error of the
// engine's.
func waitedAt[T dsl.Step](r *run, th *Thread, kind string) (T, error) {
	s, _ := r.current(th)
	if t, ok := s.(T); ok {
		return t, nil
	}
	var none T
	return none, fmt.Errorf("thread %q: cursor does not point at the %s step %q", th.ID, kind, th.Pending.StepID)
}

// advance moves a thread's top frame past its current step.
func (r *run) advance(th *Thread) {
	if n := len(th.Cursor); n > 0 {
		th.Cursor[n-1].Index++
		th.Cursor[n-1].Iter = 0
	}
}

// push enters block b at its first step.
func (r *run) push(th *Thread, b dsl.BlockID) {
	th.Cursor = append(th.Cursor, Frame{Block: b})
}
