package interpreter

import (
	"context"
	"sync"
)

// outcomeGroups is the group commit of what is handed over in process:
// the task outcomes of an activity runtime (ApplyTaskOutcome) and the
// client messages of the API (RaiseEvent, SendControl). While one group
// is being applied, those that arrive form the next, which is then applied
// as one round, one load and one commit pipeline for all of them, instead
// of a round trip each. One group is applied at a time.
type outcomeGroups struct {
	mu      sync.Mutex
	busy    bool          // a group is being applied
	forming *outcomeGroup // the next one, nil when none waits
}

// outcomeGroup is one group: its chains, one per instance (a round applies
// one transition of an instance at a time), and done, closed when they are
// applied. It runs under the context of its first member, who waits for it
// (a group whose context ends leaves its outcomes to their callers, as any
// store failure does).
type outcomeGroup struct {
	ctx    context.Context
	chains []*chain
	ids    map[InstanceID]int // index in chains
	done   chan struct{}
}

// join adds c to a group. lead: no group was being applied, so the caller
// applies g, which holds c alone, itself (applyGroups). Otherwise c joins
// the forming group, and the caller waits for g.done; g is nil when that
// group holds an item of the same instance already, and the caller then
// applies c on its own, after that group (the instance's lock orders them).
//
// A task outcome and a client message of one instance in the forming
// group share a transition instead: the message rides on the outcome's
// chain (chain.rider), its event applied on top of the outcome's, one
// commit for both. Over HTTP the two often meet (a raise sent right after
// the start, the activity's outcome arriving meanwhile), and the message
// would otherwise wait for the group and then take a round trip of its own.
func (o *outcomeGroups) join(ctx context.Context, c *chain) (g *outcomeGroup, lead bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.busy {
		o.busy = true
		return &outcomeGroup{ctx: ctx, chains: []*chain{c}, done: make(chan struct{})}, true
	}
	g = o.forming
	if g == nil {
		g = &outcomeGroup{ctx: ctx, ids: map[InstanceID]int{}, done: make(chan struct{})}
		o.forming = g
	}
	if i, ok := g.ids[c.id]; ok {
		switch x := g.chains[i]; {
		case x.rider != nil:
			return nil, false
		case x.task != nil && c.message:
			x.rider = c
		case x.message && c.task != nil:
			c.rider = x
			g.chains[i] = c
		default:
			return nil, false
		}
		return g, false
	}
	g.ids[c.id] = len(g.chains)
	g.chains = append(g.chains, c)
	return g, false
}

// applyGroups applies g, then hands the group formed meanwhile, if any, to
// a goroutine of its own, so that the caller, whose outcome was in g, need
// not wait for it.
func (e *Engine) applyGroups(g *outcomeGroup) {
	e.run(g.ctx, g.chains)
	close(g.done)
	o := &e.outcomes
	o.mu.Lock()
	next := o.forming
	o.forming = nil
	if next == nil {
		o.busy = false
	}
	o.mu.Unlock()
	if next != nil {
		go e.applyGroups(next)
	}
}
