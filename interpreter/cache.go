package interpreter

import (
	"container/list"
	"hash/fnv"
	"slices"
	"sync"

	"github.com/cairnhq/cairn/dsl"
)

// stateCache keeps the states this engine committed last, so the next work
// item of an instance runs without reading its state back (one round trip
// and one decode fewer per transition). A cached state may be stale:
// another engine may have moved the instance since. That costs nothing in
// correctness: the commit checks the revision (and the instance's created
// time, for an instance replaced under its id) and answers ErrConflict,
// and the engine then drops the entry, loads and redoes the transition.
// Entries are least recently used first out; finished instances are not
// kept.
type stateCache struct {
	mu  sync.Mutex
	max int
	m   map[InstanceID]*list.Element
	l   list.List // of *cachedState, most recent first
}

type cachedState struct {
	st  *State // never modified: Step works on a copy
	def *dsl.Workflow
}

func newStateCache(max int) *stateCache {
	if max <= 0 {
		return nil
	}
	return &stateCache{max: max, m: make(map[InstanceID]*list.Element, max)}
}

// get returns the cached state of id and its definition, or nils.
func (c *stateCache) get(id InstanceID) (*State, *dsl.Workflow) {
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[id]
	if !ok {
		return nil, nil
	}
	c.l.MoveToFront(el)
	cs := el.Value.(*cachedState)
	return cs.st, cs.def
}

// put remembers st (just committed) and def; a finished state is dropped
// instead (it takes no more transitions), and so is one whose definition
// is not def (a continueAsNew onto a new version: the next load fetches
// it).
func (c *stateCache) put(st *State, def *dsl.Workflow) {
	if c == nil {
		return
	}
	if st.Status.Terminal() || def == nil || def.Hash != st.DefHash {
		c.drop(st.ID)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[st.ID]; ok {
		el.Value = &cachedState{st: st, def: def}
		c.l.MoveToFront(el)
		return
	}
	c.m[st.ID] = c.l.PushFront(&cachedState{st: st, def: def})
	if c.l.Len() > c.max {
		last := c.l.Back()
		c.l.Remove(last)
		delete(c.m, last.Value.(*cachedState).st.ID)
	}
}

func (c *stateCache) drop(id InstanceID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[id]; ok {
		c.l.Remove(el)
		delete(c.m, id)
	}
}

// instanceLocks serialises the transitions one engine applies to an
// instance: 256 mutexes, an instance takes the one its id hashes to. A
// caller locking several instances takes their mutexes in ascending order,
// so two callers never wait for each other in a cycle.
type instanceLocks struct{ mu [256]sync.Mutex }

// lock locks the instances' mutexes and returns the function that unlocks
// them.
func (l *instanceLocks) lock(ids ...InstanceID) func() {
	idx := make([]int, 0, len(ids))
	for _, id := range ids {
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		idx = append(idx, int(h.Sum32()%uint32(len(l.mu))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		l.mu[i].Lock()
	}
	return func() {
		for _, i := range idx {
			l.mu[i].Unlock()
		}
	}
}
