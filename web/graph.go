package web

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairnhq/cairn/dsl"
)

// Graph is a workflow's step tree as the pages draw it.
type Graph struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Hash        string `json:"hash"`
	// Steps is the top-level list (block "").
	Steps []*Node `json:"steps"`
	// Issues are the lint problems of the source (schema and dsl checks),
	// never nil.
	Issues dsl.Issues `json:"issues"`
	// Error is set when the source no longer parses; Steps is then empty.
	Error string `json:"error,omitempty"`
}

// Node is one step.
type Node struct {
	ID string `json:"id"`
	// Kind is the step kind: activity, wait (an event wait), timer,
	// setStatus, set, switch, return, fail, and the later kinds (parallel,
	// forEach, while, try, call, continueAsNew) under their YAML names.
	Kind string `json:"kind"`
	// Label is the headline: the activity or event name, the timer's
	// duration; the kind itself for the kinds that have none (setStatus,
	// set, switch, return, fail...), which the pages then leave out.
	Label string `json:"label"`
	// Detail is one short line about the step (its result variable, its
	// timeout, the value it sets); "" when there is nothing to add.
	Detail string `json:"detail,omitempty"`
	// If is the source of the step's `if` condition.
	If string `json:"if,omitempty"`
	// Pos is where the step starts in the YAML source.
	Pos dsl.Pos `json:"pos"`
	// Source is the step's own YAML, a few lines at most.
	Source string `json:"source,omitempty"`
	// Blocks are the nested step lists, in source order. Their Kind says
	// where the pages draw them: case, default and branch side by side
	// below the step (one of them runs, or all at once for a parallel
	// step); body inside the step (a loop's or a try's steps); onTimeout,
	// onError and catch beside the step, dashed (they run only when
	// something goes wrong).
	Blocks []*Block `json:"blocks,omitempty"`
}

// Block is one nested list of steps.
type Block struct {
	ID string `json:"id"`
	// Kind is case, default, branch, body, onTimeout, onError or catch.
	Kind string `json:"kind"`
	// Label is what the pages write above the list ("when confirmed ==
	// true", "default", "on timeout"...).
	Label string  `json:"label"`
	Pos   dsl.Pos `json:"pos"`
	Steps []*Node `json:"steps"`
}

// Limits that keep a graph small whatever the definition.
const (
	maxSourceLines = 12
	maxDetail      = 90
)

// BuildGraph turns a parsed workflow into the tree the pages draw. It never
// fails: a step kind it does not know yet gets a generic node whose nested
// lists are still found.
func BuildGraph(wf *dsl.Workflow) *Graph {
	g := &graphBuilder{wf: wf, lines: splitLines(wf.Source)}
	return &Graph{
		Name:        wf.Name,
		Description: wf.Description,
		Hash:        wf.Hash,
		Steps:       g.list(wf.Steps),
		Issues:      dsl.Issues{},
	}
}

type graphBuilder struct {
	wf    *dsl.Workflow
	lines [][]rune
}

func (g *graphBuilder) list(steps []dsl.Step) []*Node {
	out := make([]*Node, 0, len(steps))
	for _, s := range steps {
		if s != nil {
			out = append(out, g.node(s))
		}
	}
	return out
}

func (g *graphBuilder) node(s dsl.Step) *Node {
	b := s.Base()
	n := &Node{ID: string(b.ID), Pos: b.Pos, Kind: kindOf(s)}
	n.Label = n.Kind
	if b.If != nil {
		n.If = b.If.Source
	}
	n.Source = g.snippet(b.Pos, maxSourceLines)

	switch s := s.(type) {
	case *dsl.ActivityStep:
		n.Label = s.Activity
		var d []string
		if s.Result != "" {
			d = append(d, "result → "+s.Result)
		}
		if o := g.wf.Activities[s.Activity]; o != nil {
			if o.Timeout > 0 {
				d = append(d, "timeout "+o.Timeout.String())
			}
			if o.Retry != nil && o.Retry.MaxAttempts > 1 {
				d = append(d, fmt.Sprintf("%d attempts", o.Retry.MaxAttempts))
			}
		}
		n.Detail = strings.Join(d, " · ")
	case *dsl.WaitStep:
		g.wait(n, s)
	case *dsl.SetStatusStep:
		n.Detail = g.valueText(s.Value)
	case *dsl.SetStep:
		var d []string
		for _, a := range s.Vars {
			d = append(d, a.Name+" = "+g.valueText(a.Value))
		}
		n.Detail = strings.Join(d, ", ")
	case *dsl.SwitchStep:
		for i := range s.Cases {
			c := &s.Cases[i]
			label := "when"
			if c.When != nil {
				label = "when " + c.When.Source
			}
			n.Blocks = append(n.Blocks, &Block{ID: string(c.Block), Kind: "case", Label: label, Pos: c.Pos, Steps: g.list(c.Steps)})
		}
		n.Detail = fmt.Sprintf("%d case%s", len(s.Cases), plural(len(s.Cases)))
		if s.HasDefault {
			n.Blocks = append(n.Blocks, &Block{ID: string(s.DefaultBlock), Kind: "default", Label: "default", Pos: g.blockPos(s.Default, b.Pos), Steps: g.list(s.Default)})
			n.Detail += " + default"
		}
	case *dsl.ReturnStep:
		if s.Value != nil {
			n.Detail = g.valueText(s.Value)
		}
	case *dsl.FailStep:
		var d []string
		if s.Error != nil {
			d = append(d, g.valueText(s.Error))
		}
		if s.Message != nil {
			d = append(d, g.valueText(s.Message))
		}
		n.Detail = strings.Join(d, ": ")
	case *dsl.WhileStep:
		if s.Condition != nil {
			n.Label = s.Condition.Source
		}
		n.Detail = fmt.Sprintf("at most %d times", s.Max)
		n.Blocks = append(n.Blocks, g.block(s.Block, "body", "repeat", s.Steps, b.Pos))
	case *dsl.TryStep:
		n.Blocks = append(n.Blocks, g.block(s.Block, "body", "steps", s.Steps, b.Pos))
		label := "catch"
		if len(s.Catch.Errors) > 0 {
			label += " " + strings.Join(s.Catch.Errors, ", ")
		}
		if s.Catch.As != "" && s.Catch.As != "error" {
			label += " as " + s.Catch.As
		}
		c := g.block(s.Catch.Block, "catch", label, s.Catch.Steps, s.Catch.Pos)
		if s.Catch.Pos != (dsl.Pos{}) {
			c.Pos = s.Catch.Pos
		}
		n.Blocks = append(n.Blocks, c)
	case *dsl.ForEachStep:
		n.Label = s.As + " in " + g.valueText(s.Items)
		var d []string
		switch {
		case s.Parallel && s.MaxConcurrency > 0:
			d = append(d, fmt.Sprintf("parallel, %d at once", s.MaxConcurrency))
		case s.Parallel:
			d = append(d, "parallel")
		default:
			d = append(d, "one after the other")
		}
		if s.Result != "" {
			d = append(d, "result → "+s.Result)
		}
		n.Detail = strings.Join(d, " · ")
		n.Blocks = append(n.Blocks, g.block(s.Block, "body", "each "+s.As, s.Steps, b.Pos))
		if s.OnItem != nil {
			n.Blocks = append(n.Blocks, g.block(s.OnItemBlock, "body", "on each item's end", s.OnItem, b.Pos))
		}
	case *dsl.ParallelStep:
		n.Detail = fmt.Sprintf("%d branches", len(s.Branches))
		if len(s.Branches) == 1 {
			n.Detail = "1 branch"
		}
		if s.Result != "" {
			n.Detail += " · result → " + s.Result
		}
		for i := range s.Branches {
			br := &s.Branches[i]
			bl := g.block(br.Block, "branch", fmt.Sprintf("branch %d", i+1), br.Steps, br.Pos)
			if br.Pos != (dsl.Pos{}) {
				bl.Pos = br.Pos
			}
			n.Blocks = append(n.Blocks, bl)
		}
		if s.OnBranch != nil {
			n.Blocks = append(n.Blocks, g.block(s.OnBranchBlock, "body", "on each branch's end", s.OnBranch, b.Pos))
		}
	case *dsl.ContinueAsNewStep:
		if s.Input != nil {
			n.Detail = "input " + g.valueText(s.Input)
		}
	case *dsl.CallStep:
		n.Label = s.Workflow
		if s.Result != "" {
			n.Detail = "result → " + s.Result
		}
	default:
		g.generic(n, s)
	}
	if b.OnError != nil {
		n.Blocks = append(n.Blocks, g.block(b.OnErrorBlock, "onError", "on error", b.OnError, b.Pos))
	}
	n.Detail = clip(n.Detail, maxDetail)
	return n
}

func (g *graphBuilder) wait(n *Node, s *dsl.WaitStep) {
	switch {
	case s.Event != "":
		n.Label = s.Event
	case s.Duration != nil:
		n.Kind, n.Label = "timer", g.valueText(s.Duration)
	case s.Until != nil:
		n.Kind, n.Label = "timer", "until "+g.valueText(s.Until)
	case len(s.Events) > 0:
		mode := "any of "
		if s.All {
			mode = "all of "
		}
		n.Label = mode + strings.Join(s.Events, ", ")
	}
	var d []string
	if s.Timeout != nil {
		d = append(d, "timeout "+g.valueText(s.Timeout))
	}
	if s.Result != "" {
		d = append(d, "result → "+s.Result)
	}
	n.Detail = strings.Join(d, " · ")
	if s.HasOnTimeout {
		n.Blocks = append(n.Blocks, g.block(s.OnTimeoutBlock, "onTimeout", "on timeout", s.OnTimeout, s.Pos))
	}
}

// block makes a nested list; it starts at its first step, else at its
// owner.
func (g *graphBuilder) block(id dsl.BlockID, kind, label string, steps []dsl.Step, owner dsl.Pos) *Block {
	return &Block{ID: string(id), Kind: kind, Label: label, Pos: g.blockPos(steps, owner), Steps: g.list(steps)}
}

// generic describes a step kind this file has no case for: nested lists
// are found by their shape (a []dsl.Step beside a BlockID), a name or a
// condition makes the detail.
func (g *graphBuilder) generic(n *Node, s dsl.Step) {
	v := reflect.ValueOf(s)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	var d []string
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		switch x := fv.Interface().(type) {
		case string:
			if x != "" {
				d = append(d, lowerFirst(f.Name)+": "+x)
			}
		case *dsl.Condition:
			if x != nil {
				d = append(d, x.Source)
			}
		case *dsl.Value:
			if x != nil {
				d = append(d, lowerFirst(f.Name)+": "+g.valueText(x))
			}
		case []dsl.Step:
			if f.Name == "OnError" {
				continue
			}
			if id, ok := blockOf(v, f.Name); ok {
				n.Blocks = append(n.Blocks, &Block{ID: string(id), Kind: "body", Label: strings.ToLower(strings.TrimSuffix(f.Name, "Steps")), Pos: g.blockPos(x, s.Base().Pos), Steps: g.list(x)})
			}
		default:
			g.nestedStructs(n, s, f, fv)
		}
	}
	for _, b := range n.Blocks {
		if b.Label == "" {
			b.Label = "steps"
		}
	}
	n.Detail = strings.Join(d, " · ")
}

// nestedStructs finds step lists inside struct fields (a try's Catch) and
// slices of structs (a parallel step's Branches).
func (g *graphBuilder) nestedStructs(n *Node, s dsl.Step, f reflect.StructField, fv reflect.Value) {
	one := func(x reflect.Value, kind, label string) {
		steps, ok := x.FieldByName("Steps").Interface().([]dsl.Step)
		if !ok {
			return
		}
		id, _ := blockOf(x, "Steps")
		pos, _ := fieldValue(x, "Pos").(dsl.Pos)
		if pos == (dsl.Pos{}) {
			pos = g.blockPos(steps, s.Base().Pos)
		}
		n.Blocks = append(n.Blocks, &Block{ID: string(id), Kind: kind, Label: label, Pos: pos, Steps: g.list(steps)})
	}
	name := lowerFirst(f.Name)
	switch {
	case fv.Kind() == reflect.Struct && hasStepsField(fv.Type()):
		one(fv, "body", name)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct && hasStepsField(fv.Type().Elem()):
		for i := 0; i < fv.Len(); i++ {
			one(fv.Index(i), "branch", fmt.Sprintf("%s %d", name, i+1))
		}
	}
}

func hasStepsField(t reflect.Type) bool {
	f, ok := t.FieldByName("Steps")
	return ok && f.Type == reflect.TypeOf([]dsl.Step(nil))
}

// blockOf finds the BlockID that names the list in field name: "Block"
// beside "Steps", "XBlock" beside "X".
func blockOf(v reflect.Value, name string) (dsl.BlockID, bool) {
	for _, cand := range []string{name + "Block", strings.TrimSuffix(name, "Steps") + "Block", "Block"} {
		if id, ok := fieldValue(v, cand).(dsl.BlockID); ok {
			return id, true
		}
	}
	return "", false
}

func fieldValue(v reflect.Value, name string) any {
	if v.Kind() != reflect.Struct {
		return nil
	}
	f := v.FieldByName(name)
	if !f.IsValid() || !f.CanInterface() {
		return nil
	}
	return f.Interface()
}

// kindOf is the YAML kind of a step, from its Go type: ActivityStep →
// activity, SetStatusStep → setStatus.
func kindOf(s dsl.Step) string {
	t := reflect.TypeOf(s)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return lowerFirst(strings.TrimSuffix(t.Name(), "Step"))
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// blockPos is where a nested list starts: its first step, else its owner.
func (g *graphBuilder) blockPos(steps []dsl.Step, owner dsl.Pos) dsl.Pos {
	for _, s := range steps {
		if s != nil {
			return s.Base().Pos
		}
	}
	return owner
}

// valueText shows a value briefly: a literal as JSON (a string bare), an
// expression as its source text.
func (g *graphBuilder) valueText(v *dsl.Value) string {
	if v == nil {
		return "null"
	}
	if lit, ok := v.Literal(); ok {
		if s, ok := lit.(string); ok {
			return clip(s, maxDetail)
		}
		b, err := json.Marshal(lit)
		if err != nil {
			return ""
		}
		return clip(string(b), maxDetail)
	}
	if s, ok := g.scalarAt(v.Pos); ok {
		return clip(s, maxDetail)
	}
	// A block mapping or sequence holding expressions: its lines joined.
	src := g.snippet(v.Pos, 6)
	return clip(strings.Join(strings.Fields(strings.ReplaceAll(src, "\n", ", ")), " "), maxDetail)
}

// scalarAt reads the scalar written at pos: a quoted one up to its closing
// quote, a plain one in a flow collection ({a: x, b: y}) up to the next ,
// } or ], a plain one in block context to the end of the line (comment
// left out). ok is false for a block collection (key: at pos) or a block
// scalar.
func (g *graphBuilder) scalarAt(pos dsl.Pos) (string, bool) {
	l, c := pos.Line-1, pos.Col-1
	if l < 0 || l >= len(g.lines) || c < 0 || c >= len(g.lines[l]) {
		return "", false
	}
	line := g.lines[l]
	rest := line[c:]
	switch q := rest[0]; q {
	case '"', '\'':
		var sb strings.Builder
		for i := 1; i < len(rest); i++ {
			switch r := rest[i]; {
			case q == '"' && r == '\\' && i+1 < len(rest):
				i++
				sb.WriteRune(rest[i])
			case r == q && q == '\'' && i+1 < len(rest) && rest[i+1] == '\'':
				i++
				sb.WriteRune(r)
			case r == q:
				return sb.String(), true
			default:
				sb.WriteRune(r)
			}
		}
		return sb.String() + "…", true // continues on the next line
	case '|', '>', '-', '[', '{':
		if q == '-' && (len(rest) == 1 || rest[1] != ' ') {
			break // a plain scalar starting with -
		}
		return "", false
	}
	end := len(rest)
	if inFlow(line[:c]) {
		depth := 0
	scan:
		for i, r := range rest {
			switch r {
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					end = i
					break scan
				}
				depth--
			case ',':
				if depth == 0 {
					end = i
					break scan
				}
			}
		}
	} else {
		// A key at pos makes it a block mapping.
		for i := 0; i+1 < len(rest); i++ {
			if rest[i] == ':' && rest[i+1] == ' ' && !strings.Contains(string(rest[:i]), "${") {
				return "", false
			}
		}
	}
	text := string(rest[:end])
	if i := strings.Index(text, " #"); i >= 0 {
		text = text[:i]
	}
	return strings.TrimSpace(text), true
}

// inFlow reports whether a line's text before a position leaves a flow
// collection open.
func inFlow(before []rune) bool {
	depth := 0
	quote := rune(0)
	for _, r := range before {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '{' || r == '[':
			depth++
		case r == '}' || r == ']':
			depth--
		}
	}
	return depth > 0
}

// snippet returns the source from pos to the end of the node that starts
// there: the following lines indented at least as far as pos, at most max
// lines, without comment-only lines.
func (g *graphBuilder) snippet(pos dsl.Pos, max int) string {
	l, c := pos.Line-1, pos.Col-1
	if l < 0 || l >= len(g.lines) || c < 0 || c > len(g.lines[l]) {
		return ""
	}
	first := strings.TrimRight(string(g.lines[l][c:]), " \t\r")
	out := []string{first}
	more := false
	for i := l + 1; i < len(g.lines); i++ {
		line := g.lines[i]
		text := strings.TrimSpace(string(line))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if indent(line) < c {
			break
		}
		if len(out) == max {
			more = true
			break
		}
		out = append(out, strings.TrimRight(string(line[min(c, len(line)):]), " \t\r"))
	}
	if more {
		out = append(out, "…")
	}
	return strings.Join(out, "\n")
}

func indent(line []rune) int {
	for i, r := range line {
		if r != ' ' && r != '\t' {
			return i
		}
	}
	return len(line)
}

func splitLines(src []byte) [][]rune {
	parts := strings.Split(string(src), "\n")
	out := make([][]rune, len(parts))
	for i, p := range parts {
		out[i] = []rune(p)
	}
	return out
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
