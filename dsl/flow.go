package dsl

import (
	"fmt"
	"math"

	"gopkg.in/yaml.v3"
)

// This file decodes the steps that shape the flow: while, try, forEach,
// parallel, continueAsNew and call.

var (
	whileFields    = []string{"condition", "max", "steps"}
	tryFields      = []string{"steps", "catch"}
	catchFields    = []string{"as", "errors", "steps"}
	forEachFields  = []string{"items", "as", "parallel", "maxConcurrency", "steps", "result", "onItem"}
	parallelFields = []string{"branches", "result", "onBranch"}
	canFields      = []string{"input", "version"}
)

// fieldsOf reads the fields of a step kind's mapping, reporting unknown
// ones; ok is false when n is not a mapping.
func (p *parser) fieldsOf(kind string, n *yaml.Node, allowed []string, shape string) (map[string][2]*yaml.Node, bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'%s' must be a mapping %s, not %s", kind, shape, kindName(n))
		return nil, false
	}
	f := map[string][2]*yaml.Node{}
	for _, kv := range pairs(n) {
		if _, dup := f[kv[0].Value]; dup {
			continue
		}
		if !contains(allowed, kv[0].Value) {
			p.errorf(nodePos(kv[0]), CodeUnknownField, "unknown field '%s' in %s%s", kv[0].Value, article(kind), suggest(kv[0].Value, allowed))
			continue
		}
		f[kv[0].Value] = kv
	}
	return f, true
}

// wholeNumber reads a literal whole number in [lo, hi].
func (p *parser) wholeNumber(field string, n *yaml.Node, lo, hi int) (int, bool) {
	f, ok := p.number(field, n)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		p.errorf(nodePos(n), CodeOptionRange, "'%s' must be a whole number from %d to %d, not %v", field, lo, hi, resolve(n).Value)
		return 0, false
	}
	return int(f), true
}

// localName checks a name that only a nested list sees (`as` of a forEach
// or a catch) and records what it is for messages.
func (p *parser) localName(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if !isString(n) {
		p.errorf(nodePos(n), CodeVariableName, "'as' must be a variable name, not %s", kindName(n))
		return "", false
	}
	name := n.Value
	switch {
	case !varNameRE.MatchString(name):
		p.errorf(nodePos(n), CodeVariableName, "'%s' is not a valid variable name: use letters, digits and '_', starting with a letter", name)
		return "", false
	case reservedNames[name] && name != "error":
		p.errorf(nodePos(n), CodeVariableName, "'%s' is reserved in expressions and cannot be a variable name", name)
		return "", false
	case exprKeywords[name]:
		p.errorf(nodePos(n), CodeVariableName, "'%s' is a keyword of the expression language and cannot be a variable name", name)
		return "", false
	}
	if _, seen := p.locals[name]; !seen {
		p.locals[name] = what
	}
	return name, true
}

// body decodes the required `steps` of a flow step.
func (p *parser) body(kind string, at *yaml.Node, f map[string][2]*yaml.Node, path string, block BlockID, sc *scope) ([]Step, *scope, bool) {
	kv, ok := f["steps"]
	if !ok {
		p.errorf(nodePos(at), CodeMissingField, "'%s' needs 'steps'", kind)
		return nil, sc, false
	}
	steps, end := p.steps(kv[1], path, block, sc)
	return steps, end, true
}

func (p *parser) whileStep(base StepBase, n *yaml.Node, sc *scope) (Step, *scope) {
	f, ok := p.fieldsOf("while", n, whileFields, "{condition, max, steps}")
	if !ok {
		return nil, sc
	}
	id := string(base.ID)
	s := &WhileStep{StepBase: base, Block: BlockID(id + "#body")}
	p.wf.Owner[s.Block] = s
	var end *scope
	s.Steps, end, _ = p.body("while", n, f, id+".steps", s.Block, sc)
	if kv, ok := f["steps"]; ok && len(s.Steps) == 0 && !p.full {
		if rv := resolve(kv[1]); isNull(rv) || (rv.Kind == yaml.SequenceNode && len(rv.Content) == 0) {
			p.errorf(nodePos(kv[0]), CodeEmptySteps, "the while has no steps, so nothing can change its condition")
		}
	}
	// The condition is checked again after each iteration, so it sees what
	// the body sets.
	after := sc.union(end)
	if kv, ok := f["condition"]; ok {
		s.Condition = p.condition("condition", kv[1], after)
	} else {
		p.errorf(nodePos(n), CodeMissingField, "'while' needs a 'condition'")
	}
	if kv, ok := f["max"]; ok {
		if m, ok := p.wholeNumber("max", kv[1], 1, MaxWhile); ok {
			s.Max = m
		}
	} else {
		p.errorf(nodePos(n), CodeMissingField, "'while' needs 'max', the most iterations it may run (at most %d); one more is the error LoopLimitExceeded", MaxWhile)
	}
	return s, after
}

func (p *parser) tryStep(base StepBase, n *yaml.Node, sc *scope) (Step, *scope) {
	f, ok := p.fieldsOf("try", n, tryFields, "{steps, catch}")
	if !ok {
		return nil, sc
	}
	id := string(base.ID)
	s := &TryStep{StepBase: base, Block: BlockID(id + "#try")}
	p.wf.Owner[s.Block] = s
	var end *scope
	s.Steps, end, _ = p.body("try", n, f, id+".steps", s.Block, sc)
	after := sc.union(end)
	kv, ok := f["catch"]
	if !ok {
		p.errorf(nodePos(n), CodeMissingField, "'try' needs a 'catch' with the steps to run when its steps fail")
		return s, after
	}
	cf, ok := p.fieldsOf("catch", kv[1], catchFields, "{as, errors, steps}")
	if !ok {
		return s, after
	}
	c := &s.Catch
	c.Pos = nodePos(resolve(kv[1]))
	c.Block = BlockID(id + "#catch")
	c.As = "error"
	p.wf.Owner[c.Block] = s
	if av, ok := cf["as"]; ok {
		if name, ok := p.localName(av[1], "the error of a catch"); ok {
			c.As = name
		}
	}
	if ev, ok := cf["errors"]; ok {
		c.Errors = p.errorTypes(ev[1])
	}
	// The try's steps may have run in part when the error came.
	csc := after.withError()
	if c.As != "error" {
		csc = after.with(c.As)
	}
	var cend *scope
	c.Steps, cend, _ = p.body("catch", kv[1], cf, id+".catch", c.Block, csc)
	if c.As != "error" {
		cend = cend.without(c.As)
	}
	return s, after.union(cend)
}

// errorTypes reads the `errors` of a catch: a list of error type names.
func (p *parser) errorTypes(n *yaml.Node) []string {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(nodePos(n), CodeTypeMismatch, "'errors' must be a list of error types such as [OutOfStock, TimeoutError], not %s", kindName(n))
		return nil
	}
	var out []string
	for _, e := range n.Content {
		e = resolve(e)
		if !isString(e) || !nameRE.MatchString(e.Value) {
			p.errorf(nodePos(e), CodeInvalidName, "an error type must start with a letter and hold only letters, digits, '_', '.' and '-'")
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

func (p *parser) forEachStep(base StepBase, n *yaml.Node, sc *scope) (Step, *scope) {
	f, ok := p.fieldsOf("forEach", n, forEachFields, "{items, as, steps, parallel, maxConcurrency, result, onItem}")
	if !ok {
		return nil, sc
	}
	id := string(base.ID)
	s := &ForEachStep{StepBase: base, As: "item", Block: BlockID(id + "#body")}
	p.wf.Owner[s.Block] = s
	if kv, ok := f["items"]; ok {
		s.Items = p.value(kv[1], sc)
		if lit, ok := s.Items.Literal(); ok {
			if _, isList := lit.([]any); !isList {
				p.errorf(s.Items.Pos, CodeTypeMismatch, "'items' must be a list or an expression ${ } that yields one, not %s", kindName(kv[1]))
			}
		}
	} else {
		p.errorf(nodePos(n), CodeMissingField, "'forEach' needs 'items', the list to go over")
	}
	if kv, ok := f["as"]; ok {
		if name, ok := p.localName(kv[1], "the item of a forEach"); ok {
			s.As = name
		}
	} else {
		p.locals["item"] = "the item of a forEach"
	}
	if s.As == "error" {
		p.errorf(nodePos(f["as"][1]), CodeVariableName, "'error' is reserved for onError and catch steps; name the item otherwise")
	}
	if s.As == IndexVar {
		p.errorf(nodePos(f["as"][1]), CodeVariableName, "'index' is the item's 0-based position inside the forEach; name the item otherwise")
	}
	if kv, ok := f["parallel"]; ok {
		b := resolve(kv[1])
		if b.Kind != yaml.ScalarNode || b.ShortTag() != "!!bool" {
			p.errorf(nodePos(b), CodeTypeMismatch, "'parallel' must be true or false, not %s", kindName(b))
		} else {
			s.Parallel = b.Value == "true"
		}
	}
	if kv, ok := f["maxConcurrency"]; ok {
		if m, ok := p.wholeNumber("maxConcurrency", kv[1], 1, MaxConcurrency); ok {
			s.MaxConcurrency = m
			if !s.Parallel {
				p.errorf(nodePos(kv[0]), CodeOptionRange, "'maxConcurrency' applies only with 'parallel: true'")
			}
		}
	}
	if _, seen := p.locals[IndexVar]; !seen {
		p.locals[IndexVar] = progressWhat[IndexVar]
	}
	p.branchDepth++
	restore := p.protect(map[string]string{IndexVar: progressWhat[IndexVar]})
	s.Steps, _, _ = p.body("forEach", n, f, id+".steps", s.Block, sc.with(s.As, IndexVar))
	restore()
	p.branchDepth--
	after := sc
	if kv, ok := f["onItem"]; ok {
		s.OnItemBlock = BlockID(id + "#onItem")
		p.wf.Owner[s.OnItemBlock] = s
		s.OnItem, after = p.progress("onItem", kv, id+".onItem", s.OnItemBlock, sc, s.As)
		if s.As != IndexVar && contains(ProgressVars, s.As) {
			p.errorf(nodePos(f["as"][1]), CodeVariableName, "'%s' is %s; name the item otherwise", s.As, progressWhat[s.As])
		}
	}
	if kv, ok := f["result"]; ok {
		if v, ok := p.varName("result", kv[1]); ok {
			s.Result = v
			after = after.with(v)
		}
	}
	return s, after
}

func (p *parser) parallelStep(base StepBase, n *yaml.Node, sc *scope) (Step, *scope) {
	f, ok := p.fieldsOf("parallel", n, parallelFields, "{branches, result, onBranch}")
	if !ok {
		return nil, sc
	}
	id := string(base.ID)
	s := &ParallelStep{StepBase: base}
	if kv, ok := f["branches"]; !ok {
		p.errorf(nodePos(n), CodeMissingField, "'parallel' needs 'branches', a list of step lists")
	} else if bn := resolve(kv[1]); bn.Kind != yaml.SequenceNode && !isNull(bn) {
		p.errorf(nodePos(bn), CodeTypeMismatch, "'branches' must be a list of step lists (each item starting with '- - '), not %s", kindName(bn))
	} else if len(bn.Content) == 0 {
		p.errorf(nodePos(kv[0]), CodeEmptyParallel, "the parallel step has no branches")
	} else if len(bn.Content) > MaxBranches {
		p.errorf(nodePos(kv[0]), CodeTooMany, "a parallel step has at most %d branches; use forEach to go over a list", MaxBranches)
	} else {
		p.branchDepth++
		for i, b := range bn.Content {
			br := Branch{Pos: nodePos(resolve(b)), Block: BlockID(fmt.Sprintf("%s#branch%d", id, i))}
			p.wf.Owner[br.Block] = s
			br.Steps, _ = p.steps(b, fmt.Sprintf("%s.branch[%d]", id, i), br.Block, sc)
			s.Branches = append(s.Branches, br)
		}
		p.branchDepth--
	}
	after := sc
	if kv, ok := f["onBranch"]; ok {
		s.OnBranchBlock = BlockID(id + "#onBranch")
		p.wf.Owner[s.OnBranchBlock] = s
		s.OnBranch, after = p.progress("onBranch", kv, id+".onBranch", s.OnBranchBlock, sc, "")
	}
	if kv, ok := f["result"]; ok {
		if v, ok := p.varName("result", kv[1]); ok {
			s.Result = v
			after = after.with(v)
		}
	}
	return s, after
}

// quotedOr names a scalar by its text, anything else by its kind.
func quotedOr(n *yaml.Node) string {
	if isString(n) {
		return "'" + n.Value + "'"
	}
	return kindName(n)
}

// protect marks names that the steps parsed next may not set (the index
// of a forEach body, the names of an onItem list), each with what it is;
// the func it returns puts back what was marked before.
func (p *parser) protect(what map[string]string) func() {
	saved := make(map[string]string, len(what))
	for n, w := range what {
		saved[n] = p.protected[n]
		p.protected[n] = w
	}
	return func() {
		for n, old := range saved {
			if old == "" {
				delete(p.protected, n)
			} else {
				p.protected[n] = old
			}
		}
	}
}

// progressWhat says what each name of ProgressVars is, for messages.
var progressWhat = map[string]string{
	IndexVar:  "the 0-based position of a forEach's item (or, in onBranch, of the branch that ended)",
	DoneVar:   "the count of ended items or branches in an onItem or onBranch list",
	TotalVar:  "the count of all items or branches in an onItem or onBranch list",
	ResultVar: "the variables of the ended item or branch in an onItem or onBranch list",
}

// progress decodes the onItem of a forEach (item is its `as`) or the
// onBranch of a parallel step (item ""): steps that run in the step's own
// scope each time one of its runs ends, with done, total, index, result
// and the item in scope, and that may set the step's variables. They run
// inside the transition that records the run's end, so only steps that
// end at once may stand there: set, setStatus, switch and fail. It returns
// the steps and the scope after the step: sc and what they may set.
func (p *parser) progress(field string, kv [2]*yaml.Node, path string, block BlockID, sc *scope, item string) ([]Step, *scope) {
	names := append([]string{item}, ProgressVars...)
	what := map[string]string{}
	for _, n := range ProgressVars {
		what[n] = progressWhat[n]
		if _, seen := p.locals[n]; !seen {
			p.locals[n] = progressWhat[n]
		}
	}
	if item != "" {
		what[item] = "the item of the forEach"
	}
	restore := p.protect(what)
	ended := "an item"
	if item == "" {
		ended = "a branch"
	}
	steps, end := p.steps(kv[1], path, block, sc.with(names...))
	restore()
	var walk func([]Step)
	walk = func(list []Step) {
		for _, st := range list {
			switch st.(type) {
			case *SetStep, *SetStatusStep, *SwitchStep, *FailStep:
				forEachBlock(st, walk)
			default:
				p.errorf(st.Base().Pos, CodeInProgress, "'%s' cannot stand in %s: its steps run at once each time %s ends, inside the transition that records the end, so only set, setStatus, switch and fail may; do the work in the step's own steps", kindOf(st), field, ended)
			}
		}
	}
	walk(steps)
	// The names of the list are its own; the step's variables of the same
	// names, if any, are as they were.
	for _, n := range names {
		if n != "" && !sc.hasName(n) {
			end = end.without(n)
		}
	}
	return steps, sc.union(end)
}

func (p *parser) continueAsNewStep(base StepBase, n *yaml.Node, sc *scope) Step {
	s := &ContinueAsNewStep{StepBase: base}
	if isNull(n) {
		p.wf.Upgrades = true
		return s
	}
	f, ok := p.fieldsOf("continueAsNew", n, canFields, "{input, version}")
	if !ok {
		return nil
	}
	if kv, ok := f["input"]; ok && !isNull(kv[1]) {
		s.Input = p.value(kv[1], sc)
	}
	if kv, ok := f["version"]; ok {
		switch v := resolve(kv[1]); {
		case isString(v) && v.Value == "same":
			s.SameVersion = true
		case isString(v) && v.Value == "latest":
		default:
			p.errorf(nodePos(v), CodeTypeMismatch, "continueAsNew's 'version' is latest (the default: the next run starts on the latest deployed version) or same (it stays on this one), not %s", quotedOr(v))
		}
	}
	if !s.SameVersion {
		p.wf.Upgrades = true
	}
	return s
}

func (p *parser) callStep(base StepBase, name *yaml.Node, fields map[string][2]*yaml.Node, sc *scope) (Step, *scope) {
	s := &CallStep{StepBase: base}
	rn := resolve(name)
	switch {
	case !isString(rn):
		p.errorf(nodePos(rn), CodeTypeMismatch, "'call' must be the name of the workflow to run, not %s", kindName(rn))
	case !nameRE.MatchString(rn.Value):
		p.errorf(nodePos(rn), CodeInvalidName, "workflow name '%s' must start with a letter and hold only letters, digits, '_', '.' and '-' (at most 100)", rn.Value)
	default:
		s.Workflow = rn.Value
	}
	if kv, ok := fields["input"]; ok && !isNull(kv[1]) {
		s.Input = p.value(kv[1], sc)
	}
	after := sc
	if kv, ok := fields["result"]; ok {
		if v, ok := p.varName("result", kv[1]); ok {
			s.Result = v
			after = after.with(v)
		}
	}
	return s, after
}
