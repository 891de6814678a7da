package dsl

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// The step kinds, by the key that names them. This file is the only place
// the kind strings appear.
var stepKinds = []string{"activity", "wait", "setStatus", "set", "switch", "return", "fail",
	"while", "try", "forEach", "parallel", "continueAsNew", "call"}

// Fields each kind allows besides its own key and the common fields.
var kindFields = map[string][]string{
	"activity": {"input", "result"},
	"call":     {"input", "result"},
}

// commonFields are allowed on every step.
var commonFields = []string{"id", "if", "onError"}

var (
	stepIDRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)
	varNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	waitFields = []string{"event", "any", "all", "timeout", "result", "onTimeout", "duration", "until"}
	failFields = []string{"error", "message", "data"}
)

func isKind(k string) bool {
	for _, x := range stepKinds {
		if x == k {
			return true
		}
	}
	return false
}

// kindOnlyFields are the fields some kind allows besides the common ones.
var kindOnlyFields = []string{"input", "result"}

func allStepFields() []string {
	out := append([]string(nil), commonFields...)
	out = append(out, stepKinds...)
	return append(out, kindOnlyFields...)
}

// steps decodes a list of steps. path prefixes generated ids ("steps",
// "check.case[0]"); sc is the scope on entry. It returns the steps and the
// scope after the list: every variable that some path through it can set.
func (p *parser) steps(n *yaml.Node, path string, block BlockID, sc *scope) ([]Step, *scope) {
	n = resolve(n)
	if isNull(n) {
		p.wf.Blocks[block] = nil
		return nil, sc
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "steps must be a list (each item starting with '- '), not %s", kindName(n))
		return nil, sc
	}
	var out []Step
	var ender Step // the unconditional return/fail that ends this list
	for i, item := range n.Content {
		p.nsteps++
		if !p.limit("steps", p.nsteps, MaxSteps, nodePos(item)) || p.full {
			break
		}
		if ender != nil && i > 0 {
			p.errorf(nodePos(item), CodeUnreachable, "this step can never run: the %s at %s always %s", kindOf(ender), ender.Base().Pos, enderVerb(ender))
			ender = nil // report once per list
		}
		st, after := p.step(item, fmt.Sprintf("%s[%d]", path, i), sc)
		sc = after
		if st == nil {
			continue
		}
		out = append(out, st)
		switch st.(type) {
		case *ReturnStep, *FailStep, *ContinueAsNewStep:
			if st.Base().If == nil && st.Base().OnError == nil && i < len(n.Content)-1 {
				ender = st
			}
		}
	}
	p.wf.Blocks[block] = out
	return out, sc
}

// enderVerb says what a step that ends its list does, for messages.
func enderVerb(s Step) string {
	switch s.(type) {
	case *FailStep:
		return "raises its error"
	case *ContinueAsNewStep:
		return "restarts the workflow"
	}
	return "ends the workflow"
}

func kindOf(s Step) string {
	switch s.(type) {
	case *ActivityStep:
		return "activity"
	case *WaitStep:
		return "wait"
	case *SetStatusStep:
		return "setStatus"
	case *SetStep:
		return "set"
	case *SwitchStep:
		return "switch"
	case *ReturnStep:
		return "return"
	case *FailStep:
		return "fail"
	case *WhileStep:
		return "while"
	case *TryStep:
		return "try"
	case *ForEachStep:
		return "forEach"
	case *ParallelStep:
		return "parallel"
	case *ContinueAsNewStep:
		return "continueAsNew"
	case *CallStep:
		return "call"
	}
	panic(fmt.Sprintf("dsl: unknown step type %T", s))
}

// step decodes one step; it returns nil when the step is too broken to
// model (its problems are reported), and the scope after it.
func (p *parser) step(n *yaml.Node, genID string, sc *scope) (Step, *scope) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "a step must be a mapping such as 'set: {x: 1}', not %s", kindName(n))
		return nil, sc
	}
	var kindKey, kindVal *yaml.Node
	fields := map[string][2]*yaml.Node{}
	var unknown [][2]*yaml.Node
	ok := true
	for _, kv := range pairs(n) {
		k := kv[0]
		if _, dup := fields[k.Value]; dup {
			continue
		}
		fields[k.Value] = kv
		switch {
		case isKind(k.Value):
			if kindKey != nil {
				p.errorf(nodePos(k), CodeMultipleKinds, "a step has one kind, but this one has '%s' and '%s'; split it into two steps", kindKey.Value, k.Value)
				ok = false
				continue
			}
			kindKey, kindVal = k, kv[1]
		case contains(commonFields, k.Value):
		default:
			unknown = append(unknown, kv)
		}
	}
	if kindKey == nil {
		if len(unknown) == 0 {
			p.errorf(nodePos(n), CodeMissingKind, "the step has no kind; give it one of %s", strings.Join(stepKinds, ", "))
			return nil, sc
		}
	}
	for _, kv := range unknown {
		k := kv[0]
		if kindKey != nil && contains(kindFields[kindKey.Value], k.Value) {
			continue
		}
		ok = false
		switch {
		case kindKey == nil && !contains(kindOnlyFields, k.Value):
			p.errorf(nodePos(k), CodeUnknownKind, "unknown step kind '%s'%s", k.Value, suggest(k.Value, stepKinds))
		case kindKey == nil:
			continue // e.g. result with no kind; the missing kind is reported below
		case contains(allStepFields(), k.Value):
			p.errorf(nodePos(k), CodeUnknownField, "'%s' does not belong in %s step", k.Value, article(kindKey.Value))
		default:
			p.errorf(nodePos(k), CodeUnknownField, "unknown field '%s' in %s step%s", k.Value, article(kindKey.Value), suggest(k.Value, append(append([]string(nil), commonFields...), kindFields[kindKey.Value]...)))
		}
	}
	if kindKey == nil {
		if ok {
			p.errorf(nodePos(n), CodeMissingKind, "the step has no kind; give it one of %s", strings.Join(stepKinds, ", "))
		}
		return nil, sc
	}

	base := StepBase{ID: StepID(genID), Pos: nodePos(n)}
	if kv, has := fields["id"]; has {
		v := resolve(kv[1])
		switch {
		case !isString(v):
			p.errorf(nodePos(v), CodeInvalidStepID, "a step id must be a string, not %s", kindName(v))
		case !stepIDRE.MatchString(v.Value):
			p.errorf(nodePos(v), CodeInvalidStepID, "step id '%s' must start with a letter and hold only letters, digits, '_', '.' and '-'", v.Value)
		default:
			base.ID = StepID(v.Value)
		}
	}
	if first, dup := p.ids[base.ID]; dup {
		at := base.Pos
		if kv, has := fields["id"]; has {
			at = nodePos(resolve(kv[1]))
		}
		p.errorf(at, CodeDuplicateID, "duplicate step id '%s' (first used at %s)", base.ID, first)
	} else {
		p.ids[base.ID] = base.Pos
	}
	if kv, has := fields["if"]; has {
		base.If = p.condition("if", kv[1], sc)
	}

	var st Step
	after, inner := sc, sc
	id := string(base.ID)
	switch kindKey.Value {
	case "activity":
		st, after = p.activityStep(base, kindVal, fields, sc)
	case "wait":
		st, after, inner = p.waitStep(base, kindVal, sc)
	case "setStatus":
		s := &SetStatusStep{StepBase: base, Value: p.value(kindVal, sc)}
		p.statuses = append(p.statuses, s)
		p.statusNd[s] = kindVal
		st = s
	case "set":
		st, after = p.setStep(base, kindVal, sc)
		inner = after
	case "switch":
		st, after = p.switchStep(base, kindVal, sc)
		inner = after
	case "return":
		var v *Value
		if !isNull(kindVal) {
			v = p.value(kindVal, sc)
		}
		st = &ReturnStep{StepBase: base, Value: v}
	case "fail":
		st = p.failStep(base, kindVal, sc)
	case "while":
		st, after = p.whileStep(base, kindVal, sc)
		inner = after
	case "try":
		st, after = p.tryStep(base, kindVal, sc)
		inner = after
	case "forEach":
		st, after = p.forEachStep(base, kindVal, sc)
	case "parallel":
		st, after = p.parallelStep(base, kindVal, sc)
	case "continueAsNew":
		st = p.continueAsNewStep(base, kindVal, sc)
	case "call":
		st, after = p.callStep(base, kindVal, fields, sc)
	}
	if st == nil {
		return nil, after
	}
	if p.branchDepth > 0 {
		what := ""
		switch st.(type) {
		case *ReturnStep:
			what = "ends"
		case *ContinueAsNewStep:
			what = "restarts"
		}
		if what != "" {
			p.errorf(nodePos(kindKey), CodeInBranch, "'%s' %s the whole workflow, so it cannot stand inside a parallel branch or a forEach body; set a variable and act on the step's result after it", kindKey.Value, what)
		}
	}
	if kv, ok := fields["onError"]; ok {
		b := st.Base()
		b.OnErrorBlock = BlockID(id + "#onError")
		p.wf.Owner[b.OnErrorBlock] = st
		var end *scope
		b.OnError, end = p.steps(kv[1], id+".onError", b.OnErrorBlock, inner.withError())
		if b.OnError == nil {
			b.OnError = []Step{} // present but empty: the error is swallowed
		}
		after = after.union(end)
	}
	if _, dup := p.wf.ByID[StepID(id)]; !dup {
		p.wf.ByID[StepID(id)] = st
	}
	return st, after
}

func article(kind string) string {
	if kind == "activity" {
		return "an activity"
	}
	return "a " + kind
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// varName checks a name that a step assigns and records where it is set.
func (p *parser) varName(field string, n *yaml.Node) (string, bool) {
	n = resolve(n)
	if !isString(n) {
		p.errorf(nodePos(n), CodeVariableName, "'%s' must be a variable name, not %s", field, kindName(n))
		return "", false
	}
	name := n.Value
	switch {
	case !varNameRE.MatchString(name):
		p.errorf(nodePos(n), CodeVariableName, "'%s' is not a valid variable name: use letters, digits and '_', starting with a letter", name)
		return "", false
	case reservedNames[name]:
		p.errorf(nodePos(n), CodeVariableName, "'%s' is reserved in expressions and cannot be a variable name", name)
		return "", false
	case exprKeywords[name]:
		p.errorf(nodePos(n), CodeVariableName, "'%s' is a keyword of the expression language and cannot be a variable name", name)
		return "", false
	}
	if what, ok := p.protected[name]; ok {
		p.errorf(nodePos(n), CodeVariableName, "'%s' cannot be set here: it is %s, which cairn sets; name the variable otherwise", name, what)
		return "", false
	}
	if p.branchDepth == 0 {
		p.shared[name] = true
	}
	if _, seen := p.assigned[name]; !seen {
		if !p.limit("variables", len(p.assigned)+1, MaxVariables, nodePos(n)) {
			return "", false
		}
		p.assigned[name] = nodePos(n)
	}
	return name, true
}

func (p *parser) activityStep(base StepBase, name *yaml.Node, fields map[string][2]*yaml.Node, sc *scope) (Step, *scope) {
	s := &ActivityStep{StepBase: base}
	rn := resolve(name)
	switch {
	case !isString(rn):
		p.errorf(nodePos(rn), CodeTypeMismatch, "'activity' must be the activity's name, not %s", kindName(rn))
	case !nameRE.MatchString(rn.Value):
		p.errorf(nodePos(rn), CodeInvalidName, "activity name '%s' must start with a letter and hold only letters, digits, '_', '.' and '-'", rn.Value)
	default:
		s.Activity = rn.Value
		p.activityPos[s] = nodePos(rn)
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

func (p *parser) waitStep(base StepBase, n *yaml.Node, sc *scope) (Step, *scope, *scope) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'wait' must be a mapping with event, any, all, duration or until, not %s", kindName(n))
		return nil, sc, sc
	}
	s := &WaitStep{StepBase: base}
	f := map[string][2]*yaml.Node{}
	for _, kv := range pairs(n) {
		if _, dup := f[kv[0].Value]; dup {
			continue
		}
		if !contains(waitFields, kv[0].Value) {
			p.errorf(nodePos(kv[0]), CodeUnknownField, "unknown field '%s' in a wait%s", kv[0].Value, suggest(kv[0].Value, waitFields))
			continue
		}
		f[kv[0].Value] = kv
	}
	var kinds []string // what the wait is for, in source order
	for _, kv := range pairs(n) {
		switch k := kv[0].Value; k {
		case "event", "any", "all", "duration", "until":
			if !contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	_, ev := f["event"]
	_, du := f["duration"]
	_, un := f["until"]
	_, anyOK := f["any"]
	_, allOK := f["all"]
	events := ev || anyOK || allOK
	switch {
	case len(kinds) == 0:
		p.errorf(nodePos(n), CodeWaitKind, "a wait needs 'event' (wait for an event), 'any' or 'all' (for several) or 'duration' or 'until' (a timer)")
		return nil, sc, sc
	case ev && (du || un):
		other := "duration"
		if un {
			other = "until"
		}
		p.errorf(nodePos(f[other][0]), CodeWaitKind, "a wait is either for an event or a timer: it cannot have both 'event' and '%s' (use 'timeout' to bound an event wait)", other)
		return nil, sc, sc
	case du && un:
		p.errorf(nodePos(f["until"][0]), CodeWaitKind, "a timer has 'duration' or 'until', not both")
		return nil, sc, sc
	case len(kinds) > 1:
		p.errorf(nodePos(f[kinds[1]][0]), CodeWaitKind, "a wait has one of 'event', 'any', 'all', 'duration' and 'until'; this one has '%s' and '%s'", kinds[0], kinds[1])
		return nil, sc, sc
	}
	after, inner := sc, sc
	if events {
		switch {
		case ev:
			en := resolve(f["event"][1])
			if !isString(en) || !nameRE.MatchString(en.Value) {
				p.errorf(nodePos(en), CodeInvalidName, "event name must start with a letter and hold only letters, digits, '_', '.' and '-'")
			} else {
				s.Event = en.Value
			}
		case anyOK:
			s.Events = p.eventList("any", f["any"][1])
		default:
			s.All = true
			s.Events = p.eventList("all", f["all"][1])
		}
		if kv, ok := f["timeout"]; ok {
			s.Timeout = p.durationValue("timeout", kv[1], sc)
		}
		var result string
		if kv, ok := f["result"]; ok {
			if v, ok := p.varName("result", kv[1]); ok {
				s.Result = v
				result = v
			}
		}
		if kv, ok := f["onTimeout"]; ok {
			if _, hasTimeout := f["timeout"]; !hasTimeout {
				p.errorf(nodePos(kv[0]), CodeWaitKind, "'onTimeout' runs when the wait times out, but the wait has no 'timeout'")
			}
			s.HasOnTimeout = true
			s.OnTimeoutBlock = BlockID(string(base.ID) + "#onTimeout")
			p.wf.Owner[s.OnTimeoutBlock] = s
			// After an `all` times out, its result holds the events that came.
			tsc := sc
			if s.All {
				tsc = sc.with(result)
			}
			var end *scope
			s.OnTimeout, end = p.steps(kv[1], string(base.ID)+".onTimeout", s.OnTimeoutBlock, tsc)
			after = after.union(end)
			inner = inner.union(end)
		}
		return s, after.with(result), inner
	}
	for _, k := range []string{"timeout", "result", "onTimeout"} {
		if kv, ok := f[k]; ok {
			p.errorf(nodePos(kv[0]), CodeWaitKind, "'%s' belongs to an event wait, not to a timer", k)
		}
	}
	if du {
		s.Duration = p.durationValue("duration", f["duration"][1], sc)
	} else {
		s.Until = p.timeValue(f["until"][1], sc)
	}
	return s, after, inner
}

// eventList reads the events of `any` or `all`: a list of {event: Name},
// at least one, each name once.
func (p *parser) eventList(field string, n *yaml.Node) []string {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(nodePos(n), CodeWaitKind, "'%s' must be a list of events such as [{event: Approved}, {event: Rejected}], not %s", field, kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errorf(nodePos(n), CodeWaitKind, "'%s' needs at least one event", field)
		return nil
	}
	var out []string
	seen := map[string]Pos{}
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.MappingNode {
			p.errorf(nodePos(item), CodeWaitKind, "each item of '%s' is a mapping {event: Name}, not %s", field, kindName(item))
			continue
		}
		var name *yaml.Node
		for _, kv := range pairs(item) {
			if kv[0].Value == "event" {
				name = resolve(kv[1])
				continue
			}
			p.errorf(nodePos(kv[0]), CodeUnknownField, "unknown field '%s' in an item of '%s'; it holds only 'event'", kv[0].Value, field)
		}
		switch {
		case name == nil:
			p.errorf(nodePos(item), CodeWaitKind, "each item of '%s' needs 'event'", field)
		case !isString(name) || !nameRE.MatchString(name.Value):
			p.errorf(nodePos(name), CodeInvalidName, "event name must start with a letter and hold only letters, digits, '_', '.' and '-'")
		default:
			if first, dup := seen[name.Value]; dup {
				p.errorf(nodePos(name), CodeWaitKind, "event '%s' is already in this '%s' (at %s)", name.Value, field, first)
				continue
			}
			seen[name.Value] = nodePos(name)
			out = append(out, name.Value)
		}
	}
	return out
}

// durationValue reads a duration that may also be an expression, checked
// now when it is literal and at run time otherwise.
func (p *parser) durationValue(field string, n *yaml.Node, sc *scope) *Value {
	v := p.value(n, sc)
	if lit, ok := v.Literal(); ok {
		if v.kind != valLiteral {
			p.errorf(v.Pos, CodeDuration, "'%s' must be a duration like 60s or a number of seconds, not %s", field, kindName(n))
			return v
		}
		if _, err := ToDuration(lit); err != nil {
			p.errorf(v.Pos, CodeDuration, "'%s': %v", field, err)
		}
	}
	return v
}

func (p *parser) timeValue(n *yaml.Node, sc *scope) *Value {
	v := p.value(n, sc)
	if lit, ok := v.Literal(); ok {
		if _, err := ToTime(lit); err != nil {
			p.errorf(v.Pos, CodeTime, "'until': %v", err)
		}
	}
	return v
}

func (p *parser) setStep(base StepBase, n *yaml.Node, sc *scope) (Step, *scope) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'set' must be a mapping of variable names to values, not %s", kindName(n))
		return nil, sc
	}
	if len(n.Content) == 0 {
		p.errorf(nodePos(n), CodeEmptySet, "'set' sets nothing; give it at least one variable")
		return nil, sc
	}
	s := &SetStep{StepBase: base}
	seen := map[string]bool{}
	for _, kv := range pairs(n) {
		if seen[kv[0].Value] {
			continue
		}
		seen[kv[0].Value] = true
		name, ok := p.varName("set", kv[0])
		// Assignments run in source order, each value seeing the ones
		// before it (as the interpreter evaluates them), so the scope
		// grows after each.
		val := p.value(kv[1], sc)
		if ok {
			s.Vars = append(s.Vars, Assignment{Name: name, Pos: nodePos(kv[0]), Value: val})
			sc = sc.with(name)
		}
	}
	return s, sc
}

func (p *parser) switchStep(base StepBase, n *yaml.Node, sc *scope) (Step, *scope) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode && !isNull(n) {
		p.errorf(nodePos(n), CodeTypeMismatch, "'switch' must be a list of cases ({when, steps} and a last {default}), not %s", kindName(n))
		return nil, sc
	}
	if len(n.Content) == 0 {
		p.errorf(nodePos(n), CodeEmptySwitch, "the switch has no cases")
		return nil, sc
	}
	s := &SwitchStep{StepBase: base}
	id := string(base.ID)
	after := sc
	var defaultNode *yaml.Node
	defaults := 0
	for _, cn := range n.Content {
		if cn = resolve(cn); cn.Kind == yaml.MappingNode {
			for _, kv := range pairs(cn) {
				if kv[0].Value == "default" {
					defaults++
				}
			}
		}
	}
	for i, cn := range n.Content {
		cn = resolve(cn)
		if cn.Kind != yaml.MappingNode {
			p.errorf(nodePos(cn), CodeSwitchCase, "a case must be a mapping {when, steps} or {default}, not %s", kindName(cn))
			continue
		}
		cf := map[string][2]*yaml.Node{}
		bad := false
		for _, kv := range pairs(cn) {
			switch kv[0].Value {
			case "when", "steps", "default":
				cf[kv[0].Value] = kv
			default:
				p.errorf(nodePos(kv[0]), CodeUnknownField, "unknown field '%s' in a switch case%s", kv[0].Value, suggest(kv[0].Value, []string{"when", "steps", "default"}))
				bad = true
			}
		}
		if d, ok := cf["default"]; ok {
			if _, w := cf["when"]; w {
				p.errorf(nodePos(d[0]), CodeSwitchCase, "a case has 'when' or is the 'default', not both")
				continue
			}
			if _, st := cf["steps"]; st {
				p.errorf(nodePos(cf["steps"][0]), CodeSwitchCase, "'default' holds its steps itself: write 'default:' followed by the list")
				continue
			}
			if defaultNode != nil {
				p.errorf(nodePos(d[0]), CodeSwitchCase, "the switch already has a default at %s", nodePos(defaultNode))
				continue
			}
			defaultNode = d[0]
			if i != len(n.Content)-1 && defaults == 1 {
				p.errorf(nodePos(d[0]), CodeDefaultNotLast, "'default' must be the last case of the switch; the cases after it could never run")
			}
			s.HasDefault = true
			s.DefaultBlock = BlockID(id + "#default")
			p.wf.Owner[s.DefaultBlock] = s
			var end *scope
			s.Default, end = p.steps(d[1], fmt.Sprintf("%s.default", id), s.DefaultBlock, sc)
			after = after.union(end)
			continue
		}
		w, hasWhen := cf["when"]
		st, hasSteps := cf["steps"]
		if !hasWhen {
			if !bad {
				p.errorf(nodePos(cn), CodeSwitchCase, "a case needs 'when' (or is the 'default')")
			}
			continue
		}
		if !hasSteps {
			p.errorf(nodePos(cn), CodeSwitchCase, "the case has no 'steps' to run when it holds")
			continue
		}
		k := len(s.Cases)
		c := Case{Pos: nodePos(cn), When: p.condition("when", w[1], sc), Block: BlockID(fmt.Sprintf("%s#case%d", id, k))}
		p.wf.Owner[c.Block] = s
		var end *scope
		c.Steps, end = p.steps(st[1], fmt.Sprintf("%s.case[%d]", id, k), c.Block, sc)
		after = after.union(end)
		s.Cases = append(s.Cases, c)
	}
	return s, after
}

func (p *parser) failStep(base StepBase, n *yaml.Node, sc *scope) Step {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'fail' must be a mapping {error, message}, not %s", kindName(n))
		return nil
	}
	s := &FailStep{StepBase: base}
	for _, kv := range pairs(n) {
		switch kv[0].Value {
		case "error":
			s.Error = p.stringValue("error", kv[1], sc)
			if lit, ok := s.Error.Literal(); ok {
				if str, isStr := lit.(string); isStr && !nameRE.MatchString(str) {
					p.errorf(s.Error.Pos, CodeInvalidName, "the error type '%s' must be a name (a letter, then letters, digits, '_', '.' or '-') that a catch can select; put the prose in 'message'", str)
				}
			}
		case "message":
			s.Message = p.stringValue("message", kv[1], sc)
		case "data":
			s.Data = p.value(kv[1], sc)
		default:
			p.errorf(nodePos(kv[0]), CodeUnknownField, "unknown field '%s' in a fail%s", kv[0].Value, suggest(kv[0].Value, failFields))
		}
	}
	if s.Error == nil {
		p.errorf(nodePos(n), CodeMissingField, "'fail' needs an 'error': a short code such as InvalidChoice")
	}
	return s
}

// stringValue reads a value that must be a string when it is literal.
func (p *parser) stringValue(field string, n *yaml.Node, sc *scope) *Value {
	v := p.value(n, sc)
	if lit, ok := v.Literal(); ok {
		if _, isStr := lit.(string); !isStr {
			p.errorf(v.Pos, CodeTypeMismatch, "'%s' must be a string, not %s", field, kindName(n))
		}
	}
	return v
}

// checkStatuses checks literal custom statuses against the size limit and
// the declared status schema, now that the schema is compiled.
func (p *parser) checkStatuses() {
	for _, s := range p.statuses {
		lit, ok := s.Value.Literal()
		if !ok {
			continue
		}
		if size, err := StatusSize(lit); err == nil && size > MaxStatusBytes {
			p.errorf(s.Value.Pos, CodeStatusTooLarge, "the custom status is %d bytes of UTF-16 JSON; the limit is %d", size, MaxStatusBytes)
			continue
		}
		if p.wf.Status == nil {
			continue
		}
		if err := p.wf.Status.Validate(lit); err != nil {
			msg := err.Error()
			at := s.Value.Pos
			if se, ok := err.(*SchemaError); ok && len(se.Problems) > 0 {
				pr := se.Problems[0]
				msg = pr.String()
				at = nodePos(ProblemNode(p.statusNd[s], pr))
			}
			p.errorf(at, CodeStatusSchema, "the status does not match the workflow's 'status' schema: %s", msg)
		}
	}
}
