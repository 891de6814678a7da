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

func (r *run) waitStep(th *Thread) (*dsl.WaitStep, error) {
	s, _ := r.current(th)
	if w, ok := s.(*dsl.WaitStep); ok {
		return w, nil
	}
	return nil, fmt.Errorf("thread %q: cursor does not point at the wait step %q", th.ID, th.Pending.StepID)
}

func (r *run) activityStep(th *Thread) (*dsl.ActivityStep, error) {
	s, _ := r.current(th)
	if a, ok := s.(*dsl.ActivityStep); ok {
		return a, nil
	}
	return nil, fmt.Errorf("thread %q: cursor does not point at the activity step %q", th.ID, th.Pending.StepID)
}

// advance moves a thread's top frame past its current step.
func (r *run) advance(th *Thread) {
	if n := len(th.Cursor); n > 0 {
		th.Cursor[n-1].Index++
		th.Cursor[n-1].Iter = 0
	}
}

func (r *run) push(th *Thread, b dsl.BlockID) {
	th.Cursor = append(th.Cursor, Frame{Block: b})
}
