package dsl

// TODO(dsl helper): replace this file with the real implementation. The
// exported signatures below are the contract; keep them.

// Value is a YAML value in which any string may hold `${ expr }`: a string
// that is exactly one `${ expr }` yields the expression's value (any JSON
// type); other strings with `${ }` inside interpolate to a string. Values are
// compiled at Parse time.
type Value struct {
	Pos Pos
}

// Eval computes the value in env. The result is JSON-compatible (nil, bool,
// float64 or int, string, []any, map[string]any). Errors are *EvalError.
func (v *Value) Eval(env *Env) (any, error) { panic("TODO") }

// Literal returns the value when it holds no expression at all.
func (v *Value) Literal() (any, bool) { panic("TODO") }

// Condition is a compiled boolean expression (`when:`, `if:`).
type Condition struct {
	Pos    Pos
	Source string
}

// Eval computes the condition in env. Errors are *EvalError.
func (c *Condition) Eval(env *Env) (bool, error) { panic("TODO") }

// JSONSchema is a compiled JSON Schema from a workflow (`input:`, `status:`).
type JSONSchema struct {
	Pos Pos
	Raw any // the schema as written, JSON-compatible
}

// Validate reports why v does not satisfy the schema, or nil.
func (s *JSONSchema) Validate(v any) error { panic("TODO") }

// Parse reads, checks and compiles one workflow. On any error it returns a
// nil Workflow and an Issues error holding every problem found; warnings
// alone do not prevent a Workflow.
func Parse(filename string, src []byte) (*Workflow, error) { panic("TODO") }
