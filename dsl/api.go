package dsl

// This file holds the errors other packages see: the located problems of a
// definition (Issue, Issues) and the failure of an evaluation (EvalError).

import (
	"fmt"
	"strings"
)

// Severity of an Issue.
type Severity string

const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Issue is one located problem in a workflow definition.
type Issue struct {
	File     string   `json:"file"`
	Pos      Pos      `json:"pos"`
	Severity Severity `json:"severity"`
	Code     string   `json:"code"` // stable, e.g. "unknown-step-kind", "expr-unknown-name"
	Message  string   `json:"message"`
}

func (i Issue) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s [%s]", i.File, i.Pos.Line, i.Pos.Col, i.Severity, i.Message, i.Code)
}

// Issues is every problem found in one definition; as an error it lists them.
type Issues []Issue

func (is Issues) Error() string {
	lines := make([]string, len(is))
	for i, x := range is {
		lines[i] = x.String()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any issue is an error (not only warnings).
func (is Issues) HasErrors() bool {
	for _, x := range is {
		if x.Severity != SevWarning {
			return true
		}
	}
	return false
}

// EvalError is a run-time failure of an expression: it names where the
// expression stands in the source.
type EvalError struct {
	Pos  Pos
	Expr string
	Err  error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("%s: evaluating %q: %v", e.Pos, e.Expr, e.Err)
}
func (e *EvalError) Unwrap() error { return e.Err }
