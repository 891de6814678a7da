package dsl

// The run-time environment of one evaluation, built from what the program
// fetches rather than from everything in scope: the engine evaluates
// several expressions per transition, each in a fresh Env, and copying
// every variable and building `instance` and `now` for each of them led
// the engine's allocations (issue 20).

import (
	"slices"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
)

// envUse is what a program reads of its environment, found once per
// definition in its bytecode.
type envUse struct {
	// names are the environment names the program fetches (OpLoadFast),
	// each once.
	names []string
	// whole: the program reads the environment some other way ($env is
	// OpLoadEnv) and gets it complete, as exprEnv builds it.
	whole bool
	// varsOnly: every name is a variable, so the variables map itself
	// serves as the environment; expr never writes to it.
	varsOnly bool
}

// usage scans p for the instructions that read the environment. Only
// five opcodes of expr's VM take its env; any but OpLoadFast makes the
// program get the whole environment, so that what it sees never changes.
func usage(p *vm.Program) envUse {
	var u envUse
	for i, op := range p.Bytecode {
		switch op {
		case vm.OpLoadFast:
			n, ok := p.Constants[p.Arguments[i]].(string)
			if !ok {
				return envUse{whole: true}
			}
			if !slices.Contains(u.names, n) {
				u.names = append(u.names, n)
			}
		case vm.OpLoadConst, vm.OpLoadField, vm.OpLoadMethod, vm.OpLoadEnv:
			return envUse{whole: true}
		}
	}
	u.varsOnly = true
	for _, n := range u.names {
		switch n {
		case "input", "instance", "now", "schedule", budgetEnv:
			u.varsOnly = false
		}
	}
	return u
}

// scratch is one evaluation's environment map and budget, pooled. It is
// taken for one Run and cleared before it goes back, so no evaluation
// sees another's values; the map cannot outlive the Run, since only $env
// (which gets the whole, unpooled environment) could return it.
type scratch struct {
	m   map[string]any
	b   budget
	now time.Time
	// nowFn returns now: made once per scratch rather than a closure per
	// evaluation. A function is not a JSON value, so no result keeps it.
	nowFn func() time.Time
}

var scratches = sync.Pool{New: func() any {
	s := &scratch{m: make(map[string]any, 8)}
	s.nowFn = func() time.Time { return s.now }
	return s
}}

func (s *scratch) release() {
	clear(s.m)
	s.now = time.Time{}
	scratches.Put(s)
}

// envFor returns the environment in which c runs, and the scratch to
// release after the run, if it took one. It holds what exprEnv would for
// every name the program fetches; a variable absent from e.Vars is absent
// here too, which the program reads as nil either way.
func (e *Env) envFor(c *compiled, binding bool) (map[string]any, *scratch) {
	if c.use.whole || e.Schedule != nil {
		var b *budget
		if c.budgeted {
			b = newBudget()
		}
		return e.exprEnv(binding, b), nil
	}
	if c.use.varsOnly && !binding {
		return e.Vars, nil
	}
	s := scratches.Get().(*scratch)
	for _, n := range c.use.names {
		switch n {
		case "input":
			s.m[n] = e.Input
		case budgetEnv:
			s.b = budget{steps: MaxExprSteps, alloc: MaxExprAlloc} // as newBudget
			s.m[n] = &s.b
		case "instance":
			if !binding {
				s.m[n] = map[string]any{"id": e.Instance.ID, "name": e.Instance.Name, "createdTime": e.Instance.CreatedTime}
			}
		case "now":
			if !binding {
				s.now = e.Now
				s.m[n] = s.nowFn
			}
		default:
			if !binding {
				if v, ok := e.Vars[n]; ok {
					s.m[n] = v
				}
			}
		}
	}
	return s.m, s
}
