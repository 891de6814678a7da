package interpreter

// Threads: the main path and the branches of parallel and forEach steps,
// the queue that runs them, and the joins that wait for them.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/dsl"
)

// load builds the threads from the state.
func (r *run) load() {
	r.mainThread = Thread{Cursor: r.st.Cursor, Pending: r.st.Pending, Vars: r.st.Vars}
	r.main = &r.mainThread
	r.threads = r.threadBuf[:0]
	if n := 1 + len(r.st.Threads); n > len(r.threadBuf) {
		r.threads = make([]*Thread, 0, n)
	}
	r.threads = append(r.threads, r.main)
	for i := range r.st.Threads {
		t := r.st.Threads[i]
		r.threads = append(r.threads, &t)
	}
}

// save writes the threads back into the state.
func (r *run) save() {
	r.st.Cursor, r.st.Pending, r.st.Vars = r.main.Cursor, r.main.Pending, r.main.Vars
	r.st.Threads = nil
	for _, t := range r.threads[1:] {
		r.st.Threads = append(r.st.Threads, *t)
	}
	if len(r.st.Joins) == 0 {
		r.st.Joins = nil
	}
}

// enqueue marks a thread to run (once) after the current one.
func (r *run) enqueue(th *Thread) {
	if th == r.running {
		return
	}
	for _, q := range r.queue {
		if q == th {
			return
		}
	}
	if r.queue == nil {
		r.queue = r.queueBuf[:0]
	}
	r.queue = append(r.queue, th)
}

// runQueue runs the queued threads, in order, each until it blocks or
// ends, until none is left or the instance has ended.
func (r *run) runQueue() error {
	for len(r.queue) > 0 && !r.st.Status.Terminal() {
		th := r.queue[0]
		r.queue = r.queue[1:]
		if !r.alive(th) {
			continue
		}
		if err := r.runThread(th); err != nil {
			return err
		}
	}
	r.queue = nil
	return nil
}

// runThread runs a thread's non-blocking steps until it blocks or ends.
func (r *run) runThread(th *Thread) error {
	r.running = th
	defer func() { r.running = nil }()
	for !r.st.Status.Terminal() && r.alive(th) && th.Pending == nil {
		if len(th.Cursor) == 0 {
			return r.threadDone(th)
		}
		top := &th.Cursor[len(th.Cursor)-1]
		block, ok := r.def.Blocks[top.Block]
		if !ok {
			return fmt.Errorf("thread %q: cursor names unknown block %q", th.ID, top.Block)
		}
		if top.Index >= len(block) {
			r.popFrame(th)
			continue
		}
		r.steps++
		if r.steps > maxStepsPerTransition {
			r.yield(th)
			return nil
		}
		step := block[top.Index]
		if base := step.Base(); base.If != nil && top.Iter == 0 {
			if holds, ok := eval(r, th, step, base.If); !holds {
				if ok {
					r.advance(th) // false: the step is passed over
				}
				continue // an error in the condition was raised
			}
		}
		if err := r.exec(th, step); err != nil {
			return err
		}
	}
	return nil
}

// yield parks a thread on a timer due now, so that it goes on in the next
// transition.
func (r *run) yield(th *Thread) {
	now := r.now
	th.Pending = &Pending{Kind: WaitYield, StepID: r.currentStepID(th), Deadline: &now}
	th.Pending.TimerID = r.newTimer(th, now)
}

// forEach starts the branches of a forEach over its items.
func (r *run) forEach(th *Thread, s *dsl.ForEachStep) {
	v, ok := eval(r, th, s, s.Items)
	if !ok {
		return
	}
	items, ok := v.([]any)
	switch {
	case !ok:
		r.raise(th, ErrorInfo{Type: ErrTypeItems, Message: fmt.Sprintf("step %s: the items are %s, not a list", s.ID, typeOf(v))})
		return
	case len(items) > MaxItems:
		r.raise(th, ErrorInfo{Type: ErrTypeItems, Message: fmt.Sprintf("step %s: %d items; a forEach goes over at most %d", s.ID, len(items), MaxItems)})
		return
	}
	raws := make([]json.RawMessage, len(items))
	for i, it := range items {
		raws[i] = mustJSON(it)
	}
	limit := 1
	if s.Parallel {
		limit = s.MaxConcurrency
		if limit <= 0 || limit > dsl.MaxConcurrency {
			limit = dsl.MaxConcurrency
		}
	}
	r.fork(th, s, len(items), limit, raws)
}

func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// parallel starts every branch of a parallel step at once.
func (r *run) parallel(th *Thread, s *dsl.ParallelStep) {
	r.fork(th, s, len(s.Branches), len(s.Branches), nil)
}

// fork starts up to limit of the n branches of a parallel or forEach step
// and makes the thread wait for them all.
func (r *run) fork(th *Thread, step dsl.Step, n, limit int, items []json.RawMessage) {
	id := step.Base().ID
	if n == 0 {
		if res := resultOf(step); res != "" {
			r.setVar(th, res, []any{})
		}
		r.advance(th)
		return
	}
	j := Join{Thread: th.ID, StepID: id, Total: n, Results: make([]json.RawMessage, n)}
	if limit < n {
		j.Items = items // kept to start the later branches
	}
	r.st.Joins = append(r.st.Joins, j)
	th.Pending = &Pending{Kind: WaitBranches, StepID: id, Branches: n}
	for i := 0; i < min(n, limit); i++ {
		var item json.RawMessage
		if items != nil {
			item = items[i]
		}
		r.startBranch(th, step, item)
	}
}

func resultOf(step dsl.Step) string {
	switch s := step.(type) {
	case *dsl.ForEachStep:
		return s.Result
	case *dsl.ParallelStep:
		return s.Result
	}
	return ""
}

// startBranch starts the next branch of the step th waits at.
func (r *run) startBranch(parent *Thread, step dsl.Step, item json.RawMessage) {
	j := r.join(parent.ID)
	i := j.Started
	j.Started++
	prefix := ""
	if parent != r.main {
		prefix = parent.ID + "/"
	}
	t := &Thread{ID: prefix + string(step.Base().ID) + "/" + strconv.Itoa(i), Parent: parent.ID, Branch: i}
	switch s := step.(type) {
	case *dsl.ParallelStep:
		t.Cursor = []Frame{{Block: s.Branches[i].Block}}
	case *dsl.ForEachStep:
		t.Cursor = []Frame{{Block: s.Block}}
		t.Vars = map[string]json.RawMessage{s.As: item, dsl.IndexVar: json.RawMessage(strconv.Itoa(i))}
	}
	r.threads = append(r.threads, t)
	r.enqueue(t)
}

// threadDone ends a thread whose steps have all run: the main path
// completes the instance; a branch hands its variables to its join, runs
// the step's onItem or onBranch, and makes way for the next branch.
func (r *run) threadDone(th *Thread) error {
	if th == r.main {
		r.complete(nil, nil)
		return nil
	}
	parent := r.thread(th.Parent)
	j := r.join(th.Parent)
	if parent == nil || j == nil {
		r.failInstance(ErrorInfo{Type: ErrTypeInternal, Message: fmt.Sprintf("branch %s has no join", th.ID)})
		return nil
	}
	step := r.def.ByID[j.StepID]
	out := th.Vars
	var item json.RawMessage
	if fe, ok := step.(*dsl.ForEachStep); ok && out != nil {
		item = out[fe.As]
		out = cloneVars(out)
		delete(out, fe.As)
		delete(out, dsl.IndexVar)
	}
	if out == nil {
		out = map[string]json.RawMessage{}
	}
	res := mustJSON(out)
	j.Results[th.Branch] = res
	r.removeThread(th)
	parent.Pending.Done++
	if ok, err := r.progress(parent, step, th.Branch, item, res); !ok || err != nil {
		return err
	}
	j = r.join(parent.ID)
	switch {
	case j.Started < j.Total:
		var next json.RawMessage
		if j.Items != nil {
			next = j.Items[j.Started]
		}
		r.startBranch(parent, step, next)
	case parent.Pending.Done >= j.Total:
		r.joined(parent, step)
	}
	return nil
}

// progress runs the onItem or onBranch list of step, which parent waits
// at, for the branch that just ended (its number, item and result): in a
// thread of its own over parent's variables, with the names of
// dsl.ProgressVars and the item; what it sets goes to parent. It runs to
// its end here, so the step's progress is recorded in the transition that
// records the branch's end. It reports false when the list raised an error
// that went on at the step (its branches are then cancelled) or ended the
// instance.
func (r *run) progress(parent *Thread, step dsl.Step, branch int, item, res json.RawMessage) (bool, error) {
	steps, block := dsl.Progress(step)
	if len(steps) == 0 {
		return true, nil
	}
	j := r.join(parent.ID)
	prefix := ""
	if parent != r.main {
		prefix = parent.ID + "/"
	}
	// Its id is under the parent's, like a branch's, so that dropping the
	// parent's branches drops it too.
	t := &Thread{ID: prefix + string(step.Base().ID) + "/progress", Parent: parent.ID, Branch: branch, Cursor: []Frame{{Block: block}}}
	t.Vars = map[string]json.RawMessage{
		dsl.DoneVar:   json.RawMessage(strconv.Itoa(parent.Pending.Done)),
		dsl.TotalVar:  json.RawMessage(strconv.Itoa(j.Total)),
		dsl.IndexVar:  json.RawMessage(strconv.Itoa(branch)),
		dsl.ResultVar: res,
	}
	local := map[string]bool{dsl.DoneVar: true, dsl.TotalVar: true, dsl.IndexVar: true, dsl.ResultVar: true}
	if fe, ok := step.(*dsl.ForEachStep); ok {
		if item == nil {
			item = json.RawMessage("null")
		}
		t.Vars[fe.As] = item
		local[fe.As] = true
	}
	r.threads = append(r.threads, t)
	running := r.running
	r.running = t
	defer func() { r.running = running }()
	for !r.st.Status.Terminal() && r.alive(t) && len(t.Cursor) > 0 {
		top := &t.Cursor[len(t.Cursor)-1]
		list := r.def.Blocks[top.Block]
		if top.Index >= len(list) {
			r.popFrame(t)
			continue
		}
		s := list[top.Index]
		if base := s.Base(); base.If != nil && top.Iter == 0 {
			if holds, ok := eval(r, t, s, base.If); !holds {
				if ok {
					r.advance(t)
				}
				continue
			}
		}
		err := r.exec(t, s)
		r.flush(t, parent, local)
		if err != nil {
			return false, err
		}
		if t.Pending != nil {
			// dsl refuses every step that waits in these lists.
			return false, fmt.Errorf("step %s: %s waits inside %s", step.Base().ID, s.Base().ID, block)
		}
	}
	if r.st.Status.Terminal() || !r.alive(t) {
		return false, nil
	}
	r.removeThread(t)
	return true, nil
}

// flush writes what the progress thread t set to its parent after each of
// its steps, as if the parent had run it: a step that raised keeps what it
// set before, as in any thread, even when the error goes on at the parent.
func (r *run) flush(t, parent *Thread, local map[string]bool) {
	changed := false
	for k, v := range t.Vars {
		// error is the progress thread's own while one of its handlers runs.
		if local[k] || k == "error" || bytes.Equal(parent.Vars[k], v) {
			continue
		}
		if parent.Vars == nil {
			parent.Vars = map[string]json.RawMessage{}
		}
		parent.Vars[k] = v
		changed = true
	}
	if changed {
		// The parent's branches see its variables through their views.
		r.dropViews()
	}
}

// joined goes on after a parallel or forEach step whose branches have all
// ended: its result is their variables, in order.
func (r *run) joined(th *Thread, step dsl.Step) {
	j := r.join(th.ID)
	var b strings.Builder
	b.WriteByte('[')
	for i, res := range j.Results {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(res)
	}
	b.WriteByte(']')
	r.dropJoin(th.ID)
	th.Pending = nil
	if res := resultOf(step); res != "" {
		r.setVar(th, res, decodeJSON(json.RawMessage(b.String())))
		if !r.checkVars(th, step) {
			r.enqueue(th)
			return
		}
	}
	r.advance(th)
	r.enqueue(th)
}

// dropBranches cancels every branch under a thread (what they wait for
// included) and the join it waits at.
func (r *run) dropBranches(parent *Thread) {
	prefix := ""
	if parent != r.main {
		prefix = parent.ID + "/"
	}
	under := func(t *Thread) bool { return t != r.main && strings.HasPrefix(t.ID, prefix) }
	// The threads are copied, and only when some go: a caller may be
	// ranging over them.
	if slices.ContainsFunc(r.threads, under) {
		kept := r.threads[:0:0]
		for _, t := range r.threads {
			if under(t) {
				r.abandon(t)
				r.dropView(t)
				r.dropJoin(t.ID)
				continue
			}
			kept = append(kept, t)
		}
		r.threads = kept
	}
	r.dropJoin(parent.ID)
	if parent.Pending != nil && parent.Pending.Kind == WaitBranches {
		parent.Pending = nil
	}
}

// stopAll cancels everything the instance waits for: every branch, every
// timer, the workflow's timeout.
func (r *run) stopAll() {
	r.abandon(r.main)
	r.dropBranches(r.main)
	r.main.Pending = nil
	r.main.Cursor = nil
	if t := r.st.Timeout; t != nil {
		r.command(&CancelTimer{ID: t.ID, Due: t.Due})
		r.st.Timeout = nil
	}
	r.st.Joins = nil
}

// cancelTask withdraws the task th's activity attempt waits for, if any.
func (r *run) cancelTask(th *Thread) {
	p := th.Pending
	if p == nil || p.Kind != WaitActivity || p.TaskID == "" {
		return
	}
	queue := p.Queue
	if queue == "" { // a state written before Pending had its queue
		queue, _ = r.queueOf(p.Activity)
	}
	r.command(&CancelTask{TaskID: p.TaskID, Queue: queue})
}

func (r *run) removeThread(th *Thread) {
	for i, t := range r.threads {
		if t == th {
			r.threads = append(r.threads[:i:i], r.threads[i+1:]...)
			break
		}
	}
	r.dropView(th)
}

func (r *run) alive(th *Thread) bool {
	if th == r.main {
		return true
	}
	for _, t := range r.threads {
		if t == th {
			return true
		}
	}
	return false
}

func (r *run) thread(id string) *Thread {
	for _, t := range r.threads {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// find returns the first thread whose wait matches.
func (r *run) find(match func(*Pending) bool) *Thread {
	for _, t := range r.threads {
		if t.Pending != nil && match(t.Pending) {
			return t
		}
	}
	return nil
}

func (r *run) join(thread string) *Join {
	for i := range r.st.Joins {
		if r.st.Joins[i].Thread == thread {
			return &r.st.Joins[i]
		}
	}
	return nil
}

func (r *run) dropJoin(thread string) {
	for i := range r.st.Joins {
		if r.st.Joins[i].Thread == thread {
			r.st.Joins = append(r.st.Joins[:i:i], r.st.Joins[i+1:]...)
			return
		}
	}
}

// abandon cancels what a thread waits for: its timer, its activity task,
// and a child it called.
func (r *run) abandon(th *Thread) {
	r.cancelTimer(th)
	r.cancelTask(th)
	if p := th.Pending; p != nil && p.Kind == WaitChild {
		r.command(&TerminateChild{ID: p.Child, Reason: fmt.Sprintf("its parent %s no longer waits for it", r.st.ID)})
		r.history(HistoryEvent{Type: "ChildTerminated", StepID: p.StepID, Name: string(p.Child)})
	}
}
