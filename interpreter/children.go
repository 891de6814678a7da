package interpreter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// This file is what follows a commit: child instances of call steps.
//
// A call step's transition carries *StartChild and *TerminateChild
// commands, which no store applies: the engine takes them out before the
// commit and carries them out after it succeeded, and tells a parent when
// its child has ended. None of this is atomic with the commit; the parent's
// call step repeats StartChild on a timer while it waits, and StartChild
// also resends the end of a child that already finished, so an engine that
// dies in between only delays the call.

// takeAfterCommit removes the commands applied after the commit from each
// transition and returns them, per transition (nil when there are none).
func takeAfterCommit(ts []*Transition) [][]Command {
	var out [][]Command
	for i, t := range ts {
		for _, c := range t.Commands {
			if runsAfterCommit(c) {
				if out == nil {
					out = make([][]Command, len(ts))
				}
				out[i] = append(out[i], c)
			}
		}
		if out != nil && out[i] != nil {
			kept := make([]Command, 0, len(t.Commands)-len(out[i]))
			for _, c := range t.Commands {
				if !runsAfterCommit(c) {
					kept = append(kept, c)
				}
			}
			t.Commands = kept
		}
	}
	return out
}

// runsAfterCommit reports whether c is a call step's command, which the
// engine carries out after the commit (afterCommit) rather than the store.
func runsAfterCommit(c Command) bool {
	switch c.(type) {
	case *StartChild, *TerminateChild:
		return true
	}
	return false
}

// afterCommit carries out a committed transition's child commands and, when
// it ended a child, tells the parent.
func (e *Engine) afterCommit(ctx context.Context, t *Transition, after [][]Command, k int) {
	var cmds []Command
	if after != nil {
		cmds = after[k]
	}
	st := t.State
	if len(cmds) == 0 && (st.Parent == "" || !st.Status.Terminal()) {
		return
	}
	now := e.opts.Clock()
	for _, c := range cmds {
		switch c := c.(type) {
		case *StartChild:
			e.startChild(ctx, c, now)
		case *TerminateChild:
			err := e.store.SendControl(ctx, c.ID, Event{Kind: EvTerminate, Time: now, Reason: c.Reason})
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinished) {
				e.log.Warn("terminating a child failed", "child", c.ID, "err", err)
			}
		}
	}
	if st.Parent != "" && st.Status.Terminal() {
		e.tellParent(ctx, st.Parent, ChildResult{Child: st.ID, Status: st.Status, Output: st.Output}, now)
	}
}

// startChild creates a child that does not exist yet, or resends the end
// of one that has finished.
func (e *Engine) startChild(ctx context.Context, c *StartChild, now time.Time) {
	cur, err := e.store.FetchStatus(ctx, c.ID)
	switch {
	case err == nil && cur.Status.Terminal():
		e.tellParent(ctx, c.Parent, ChildResult{Child: c.ID, Status: cur.Status, Output: cur.Output}, now)
		return
	case err == nil:
		return // running
	case !errors.Is(err, ErrNotFound):
		e.log.Warn("checking a child failed; the parent asks again later", "child", c.ID, "err", err)
		return
	}
	failed := func(typ, msg string) {
		e.tellParent(ctx, c.Parent, ChildResult{Child: c.ID, Status: StatusFailed, Output: mustJSON(ErrorInfo{Type: typ, Message: msg})}, now)
	}
	hash, err := e.store.LatestDefinition(ctx, c.Workflow)
	if errors.Is(err, ErrNotFound) {
		failed(ErrTypeDefinition, fmt.Sprintf("workflow %s is not deployed", c.Workflow))
		return
	}
	var def *dsl.Workflow
	if err == nil {
		def, err = e.cat.Get(ctx, c.Workflow, hash)
	}
	if err != nil {
		e.log.Warn("loading a child's workflow failed; the parent asks again later", "child", c.ID, "err", err)
		return
	}
	if def.Input != nil {
		if err := def.Input.Validate(decodeJSON(c.Input)); err != nil {
			failed("InvalidInput", fmt.Sprintf("the input does not satisfy workflow %s's input schema: %v", c.Workflow, err))
			return
		}
	}
	ni := Instantiate(def, c.ID, c.Input, now)
	ni.State.Parent = c.Parent
	ni.State.TraceParent = c.Trace
	if err := e.store.CreateInstance(ctx, ni); err != nil && !errors.Is(err, ErrAlreadyRunning) {
		e.log.Warn("creating a child failed; the parent asks again later", "child", c.ID, "err", err)
	}
}

// tellParent sends a child's end to its parent, unless the parent is gone.
func (e *Engine) tellParent(ctx context.Context, parent InstanceID, res ChildResult, now time.Time) {
	err := e.store.RaiseEvent(ctx, parent, ChildEvent, mustJSON(res), now)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinished) {
		e.log.Warn("telling a parent of its child's end failed; the parent asks again later", "parent", parent, "child", res.Child, "err", err)
	}
}
