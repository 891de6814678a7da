package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// Reach records which steps of one workflow were seen running.
//
// The interpreter reports a transition's effects, not every step it ran, so
// the steps are inferred: a step named by a history line (a task, a status,
// a timer, an error), a wait, a cursor; a variable that changed and that
// only one step sets (to that value, when the step sets a literal); the
// handler an error went to; the return whose literal is the output. A step
// reached implies every earlier step of its list and the step that owns the
// list. What ran without leaving a trace (a case holding only a return whose
// value is computed, say) is reported unreached.
type Reach struct {
	def       *dsl.Workflow
	where     map[dsl.StepID]loc
	assigners map[string][]assigner
	Steps     map[dsl.StepID]bool
}

type loc struct {
	block dsl.BlockID
	index int
}

// assigner is a step that sets a variable; lit holds the value when the
// step sets a literal.
type assigner struct {
	id     dsl.StepID
	lit    any
	has    bool
	result bool // the step's result: an activity, wait, call, forEach or parallel
}

func newReach(def *dsl.Workflow) *Reach {
	r := &Reach{def: def, where: map[dsl.StepID]loc{}, assigners: map[string][]assigner{}, Steps: map[dsl.StepID]bool{}}
	for b, steps := range def.Blocks {
		for i, s := range steps {
			r.where[s.Base().ID] = loc{b, i}
			r.addAssigners(s)
		}
	}
	return r
}

func (r *Reach) addAssigners(s dsl.Step) {
	add := func(name string, a assigner) {
		if name != "" {
			r.assigners[name] = append(r.assigners[name], a)
		}
	}
	id := s.Base().ID
	switch s := s.(type) {
	case *dsl.SetStep:
		for _, v := range s.Vars {
			lit, ok := v.Value.Literal()
			add(v.Name, assigner{id: id, lit: normal(lit), has: ok})
		}
	case *dsl.ActivityStep:
		add(s.Result, assigner{id: id, result: true})
	case *dsl.WaitStep:
		add(s.Result, assigner{id: id, result: true})
	case *dsl.CallStep:
		add(s.Result, assigner{id: id, result: true})
	case *dsl.ForEachStep:
		add(s.Result, assigner{id: id, result: true})
	case *dsl.ParallelStep:
		add(s.Result, assigner{id: id, result: true})
	}
}

// Merge adds what o saw (o must be of the same workflow).
func (r *Reach) Merge(o *Reach) {
	for id := range o.Steps {
		r.Steps[id] = true
	}
}

// mark records that a step ran, with what that implies.
func (r *Reach) mark(id dsl.StepID) {
	l, ok := r.where[id]
	if !ok || r.Steps[id] {
		return
	}
	r.Steps[id] = true
	steps := r.def.Blocks[l.block]
	for j := 0; j < l.index; j++ {
		r.mark(steps[j].Base().ID)
	}
	if o := r.def.Owner[l.block]; o != nil {
		r.mark(o.Base().ID)
	}
}

// enter records that a list of steps began.
func (r *Reach) enter(b dsl.BlockID) {
	if steps := r.def.Blocks[b]; len(steps) > 0 {
		r.mark(steps[0].Base().ID)
	}
}

// observe reads one transition of an instance of the workflow.
func (r *Reach) observe(before *interpreter.State, tr *interpreter.Transition) {
	for _, h := range tr.History {
		if h.StepID == "" {
			continue
		}
		r.mark(h.StepID)
		switch h.Type {
		case "TimerFired":
			// An event wait's timer is its timeout.
			if w, ok := r.def.ByID[h.StepID].(*dsl.WaitStep); ok && w.HasOnTimeout && (w.Event != "" || len(w.Events) > 0) {
				r.enter(w.OnTimeoutBlock)
			}
		case "ErrorHandled":
			var info interpreter.ErrorInfo
			_ = json.Unmarshal(h.Data, &info)
			r.enter(r.handler(h.StepID, info.Type))
		}
	}
	st := tr.State
	r.cursor(st.Cursor, st.Pending)
	for _, th := range st.Threads {
		r.cursor(th.Cursor, th.Pending)
	}
	for _, j := range st.Joins {
		r.mark(j.StepID)
	}
	r.vars(before.Vars, st.Vars)
	old := map[string]map[string]json.RawMessage{}
	for _, th := range before.Threads {
		old[th.ID] = th.Vars
	}
	for _, th := range st.Threads {
		r.vars(old[th.ID], th.Vars)
	}
}

func (r *Reach) cursor(frames []interpreter.Frame, p *interpreter.Pending) {
	for _, f := range frames {
		steps := r.def.Blocks[f.Block]
		if n := min(f.Index, len(steps)); n > 0 {
			r.mark(steps[n-1].Base().ID)
		}
		if o := r.def.Owner[f.Block]; o != nil {
			r.mark(o.Base().ID)
		}
	}
	if p != nil {
		r.mark(p.StepID)
	}
}

// vars attributes each changed variable to the one step that can have set it.
func (r *Reach) vars(before, after map[string]json.RawMessage) {
	for name, raw := range after {
		if bytes.Equal(before[name], raw) {
			continue
		}
		var v any
		_ = json.Unmarshal(raw, &v)
		var found []dsl.StepID
		for _, a := range r.assigners[name] {
			if a.result && !r.Steps[a.id] {
				continue // it waits (and so is reached) before its result comes
			}
			if !a.has || jsonEqual(a.lit, v) {
				found = append(found, a.id)
			}
		}
		if len(found) == 1 {
			r.mark(found[0])
		}
	}
}

// handler is the list that handles an error of type typ raised by step id:
// its own onError, else the nearest enclosing onError or catch.
func (r *Reach) handler(id dsl.StepID, typ string) dsl.BlockID {
	cur := r.def.ByID[id]
	var from dsl.BlockID
	first := true
	for cur != nil {
		b := cur.Base()
		if b.OnError != nil && (first || !dsl.IsHandler(cur, from)) {
			return b.OnErrorBlock
		}
		if t, ok := cur.(*dsl.TryStep); ok && !first && from == t.Block && t.Catch.Handles(typ) {
			return t.Catch.Block
		}
		from = r.where[b.ID].block
		cur = r.def.Owner[from]
		first = false
	}
	return ""
}

// finish reads how an instance ended: which return completed it.
func (r *Reach) finish(st *interpreter.State) {
	if st.Status != interpreter.StatusCompleted {
		return
	}
	var out any
	_ = json.Unmarshal(st.Output, &out)
	var returns, matching []dsl.StepID
	for id, s := range r.def.ByID {
		ret, ok := s.(*dsl.ReturnStep)
		if !ok {
			continue
		}
		returns = append(returns, id)
		if ret.Value == nil {
			if out == nil {
				matching = append(matching, id)
			}
		} else if lit, ok := ret.Value.Literal(); !ok || jsonEqual(normal(lit), out) {
			matching = append(matching, id)
		}
	}
	switch {
	case len(matching) == 1:
		r.mark(matching[0])
	case len(returns) == 0 && len(r.def.Steps) > 0:
		r.mark(r.def.Steps[len(r.def.Steps)-1].Base().ID) // it ran to the end
	}
}

// Gap is a step or a list of steps that no case reached.
type Gap struct {
	File string  `json:"file"`
	Pos  dsl.Pos `json:"pos"`
	// Kind is "step" or "branch".
	Kind string `json:"kind"`
	// What names it: the step id, or the list's (a case, a default, an
	// onTimeout, an onError, a catch, a loop body).
	What string `json:"what"`
}

func (g Gap) String() string {
	return fmt.Sprintf("%s:%d:%d: %s %s never reached", g.File, g.Pos.Line, g.Pos.Col, g.Kind, g.What)
}

// Gaps lists what r did not reach, in source order: each unreached list
// whose owner was reached, and each unreached step outside such lists.
func (r *Reach) Gaps() []Gap {
	var gaps []Gap
	covered := func(b dsl.BlockID) bool {
		for _, s := range r.def.Blocks[b] {
			if r.Steps[s.Base().ID] {
				return true
			}
		}
		return false
	}
	for b, steps := range r.def.Blocks {
		if b == "" || len(steps) == 0 || covered(b) {
			continue
		}
		if o := r.def.Owner[b]; o != nil && !r.Steps[o.Base().ID] {
			continue // the owner's own gap says it
		}
		gaps = append(gaps, Gap{File: r.def.File, Pos: r.blockPos(b, steps), Kind: "branch", What: r.blockName(b)})
	}
	for id, s := range r.def.ByID {
		if r.Steps[id] {
			continue
		}
		l := r.where[id]
		if l.block != "" && !covered(l.block) {
			continue // inside an unreached list
		}
		gaps = append(gaps, Gap{File: r.def.File, Pos: s.Base().Pos, Kind: "step", What: string(id)})
	}
	sort.Slice(gaps, func(i, j int) bool {
		a, b := gaps[i].Pos, gaps[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return gaps
}

func (r *Reach) blockPos(b dsl.BlockID, steps []dsl.Step) dsl.Pos {
	if sw, ok := r.def.Owner[b].(*dsl.SwitchStep); ok {
		for _, c := range sw.Cases {
			if c.Block == b {
				return c.Pos
			}
		}
	}
	return steps[0].Base().Pos
}

func (r *Reach) blockName(b dsl.BlockID) string {
	if sw, ok := r.def.Owner[b].(*dsl.SwitchStep); ok {
		for _, c := range sw.Cases {
			if c.Block == b && c.When != nil {
				return fmt.Sprintf("%s (when: %s)", b, c.When.Source)
			}
		}
	}
	return string(b)
}

// Total counts the workflow's steps and non-empty nested lists.
func (r *Reach) Total() (steps, branches int) {
	for b, s := range r.def.Blocks {
		if b != "" && len(s) > 0 {
			branches++
		}
	}
	return len(r.def.ByID), branches
}

// normal turns a YAML or Go value into its JSON form (float64 numbers).
func normal(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(normal(a))
	y, err2 := json.Marshal(normal(b))
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
