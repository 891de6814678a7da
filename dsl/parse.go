package dsl

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser holds the state of one Parse call.
type parser struct {
	file   string
	src    []byte
	issues Issues
	lines  [][]rune

	wf       *Workflow
	ids      map[StepID]Pos
	exprs    []*compiled
	assigned map[string]Pos // every variable some step sets → where first
	// shared holds the variables set somewhere outside every parallel
	// branch and forEach body; a name assigned only inside them is local to
	// its branch, which messages explain.
	shared map[string]bool
	// locals holds the names that only a nested list sees (a forEach's
	// item, a catch's error) and what they are, for messages.
	locals      map[string]string
	branchDepth int // > 0 while parsing a parallel branch or forEach body
	// protected holds the names the steps being parsed may not set (see
	// protect), and what each is.
	protected map[string]string
	vars      *registry
	full      bool // maxIssues reached
	limited   map[string]bool
	nsteps    int
	statuses  []*SetStatusStep
	statusNd  map[*SetStatusStep]*yaml.Node
	// activityPos is where each activity step names its activity.
	activityPos map[*ActivityStep]Pos
}

// Limits on the size of a definition. They are far above what a person
// writes, and keep the cost of loading a hostile one (at most
// MaxSourceBytes) to well under a second.
const (
	MaxSteps       = 10_000
	MaxVariables   = 1_000
	MaxExpressions = 10_000
	// maxIssues stops a file with thousands of mistakes from producing
	// thousands of messages (and spending time on each suggestion).
	maxIssues = 200
)

func (p *parser) errorf(pos Pos, code, format string, args ...any) {
	p.report(SevError, pos, code, format, args...)
}

// warnf records a problem that does not stop the workflow from running.
func (p *parser) warnf(pos Pos, code, format string, args ...any) {
	p.report(SevWarning, pos, code, format, args...)
}

func (p *parser) report(sev Severity, pos Pos, code, format string, args ...any) {
	if p.full {
		return
	}
	if len(p.issues) >= maxIssues {
		p.full = true
		p.issues = append(p.issues, Issue{File: p.file, Pos: pos, Severity: SevError, Code: CodeTooMany, Message: fmt.Sprintf("more than %d problems; stopping here", maxIssues)})
		return
	}
	p.issues = append(p.issues, Issue{File: p.file, Pos: pos, Severity: sev, Code: code, Message: fmt.Sprintf(format, args...)})
}

// limit reports, once per kind, a count over its maximum.
func (p *parser) limit(what string, n, max int, pos Pos) bool {
	if n <= max {
		return true
	}
	if !p.limited[what] {
		p.limited[what] = true
		p.errorf(pos, CodeTooMany, "more than %d %s in one workflow", max, what)
	}
	return false
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`)

// Parse reads, checks and compiles one workflow. On any error it returns a
// nil Workflow and an Issues error holding every problem found, sorted by
// position; warnings alone do not prevent a Workflow: they are in its
// Warnings, and the error is nil.
//
// It works in two passes: the first decodes the YAML into the typed model
// and records every expression with the variables in scope where it stands;
// the second compiles them all, now that every assigned name is known, and
// checks literal statuses against the status schema.
func Parse(filename string, src []byte) (*Workflow, error) {
	p := &parser{file: filename, src: src, ids: map[StepID]Pos{}, assigned: map[string]Pos{}, shared: map[string]bool{}, locals: map[string]string{}, protected: map[string]string{}, statusNd: map[*SetStatusStep]*yaml.Node{}, activityPos: map[*ActivityStep]Pos{}, vars: &registry{index: map[string]int{}}, limited: map[string]bool{}}
	sum := sha256.Sum256(src)
	p.wf = &Workflow{
		File:       filename,
		Source:     src,
		Hash:       hex.EncodeToString(sum[:]),
		Activities: map[string]*ActivityOptions{},
		Events:     map[string]*JSONSchema{},
		Blocks:     map[BlockID][]Step{},
		Owner:      map[BlockID]Step{},
		ByID:       map[StepID]Step{},
	}
	if root := p.loadYAML(); root != nil {
		p.workflow(root)
		p.compileAll()
		p.checkStatuses()
		p.checkTypes()
		for _, c := range p.exprs {
			c.tree = nil
		}
	}
	p.sortIssues()
	if p.issues.HasErrors() {
		return nil, p.issues
	}
	p.wf.Warnings = p.issues
	return p.wf, nil
}

// sortIssues orders issues by position and drops exact repeats (an alias
// can make one mistake visible twice).
func (p *parser) sortIssues() {
	sort.SliceStable(p.issues, func(i, j int) bool {
		a, b := p.issues[i].Pos, p.issues[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	out := p.issues[:0]
	seen := map[Issue]bool{}
	for _, is := range p.issues {
		if !seen[is] {
			seen[is] = true
			out = append(out, is)
		}
	}
	p.issues = out
}

var topFields = []string{"name", "description", "input", "status", "events", "activities", "timeout", "schedules", "steps"}

// maxWorkflowTimeout bounds a workflow's timeout, like an activity's.
const maxWorkflowTimeout = maxActivityTimeout

func (p *parser) workflow(root *yaml.Node) {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		p.errorf(nodePos(root), CodeTypeMismatch, "a workflow must be a mapping with name and steps, not %s", kindName(root))
		return
	}
	var stepsKey, stepsNode *yaml.Node
	seen := map[string]bool{}
	for _, kv := range pairs(root) {
		k, v := kv[0], kv[1]
		if seen[k.Value] {
			continue // reported as a duplicate key
		}
		seen[k.Value] = true
		switch k.Value {
		case "name":
			if !isString(v) {
				p.errorf(nodePos(v), CodeTypeMismatch, "'name' must be a string, not %s", kindName(v))
			} else if !nameRE.MatchString(resolve(v).Value) {
				p.errorf(nodePos(v), CodeInvalidName, "workflow name '%s' must start with a letter and hold only letters, digits, '_', '.' and '-' (at most 100)", resolve(v).Value)
			} else {
				p.wf.Name = resolve(v).Value
			}
		case "description":
			if !isString(v) {
				p.errorf(nodePos(v), CodeTypeMismatch, "'description' must be a string, not %s", kindName(v))
			} else {
				p.wf.Description = resolve(v).Value
			}
		case "input":
			p.wf.Input = p.compileSchema("input", k, v)
		case "status":
			p.wf.Status = p.compileSchema("status", k, v)
		case "activities":
			p.activities(v)
		case "events":
			p.events(v)
		case "timeout":
			if d, ok := p.staticDuration("timeout", v, true, maxWorkflowTimeout); ok {
				p.wf.Timeout = d
			}
		case "schedules":
			p.schedules(v)
		case "steps":
			stepsKey, stepsNode = k, v
		default:
			hint := suggest(k.Value, topFields)
			p.errorf(nodePos(k), CodeUnknownField, "unknown field '%s' in a workflow%s", k.Value, hint)
			if hint != "" {
				// A misspelt required field is reported once, here.
				seen[strings.TrimSuffix(strings.TrimPrefix(hint, " (did you mean '"), "'?)")] = true
			}
		}
	}
	if !seen["name"] {
		p.errorf(nodePos(root), CodeMissingField, "the workflow has no 'name'")
	}
	if stepsNode == nil {
		if !seen["steps"] {
			p.errorf(nodePos(root), CodeMissingField, "the workflow has no 'steps'")
		}
		return
	}
	if isNull(stepsNode) || (resolve(stepsNode).Kind == yaml.SequenceNode && len(resolve(stepsNode).Content) == 0) {
		p.errorf(nodePos(stepsKey), CodeEmptySteps, "the workflow has no steps; add at least one")
		return
	}
	root0 := &scope{reg: p.vars}
	p.wf.Steps, _ = p.steps(stepsNode, "steps", "", root0)
}
