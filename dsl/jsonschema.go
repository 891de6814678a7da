package dsl

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// JSONSchema is a compiled JSON Schema from a workflow (`input:`, `status:`).
// Schemas default to draft 2020-12, assert `format`, and may not load
// anything: a `$ref` outside the schema itself is an error, so a definition
// can never make the engine read files or the network.
type JSONSchema struct {
	Pos Pos
	Raw any // the schema as written, JSON-compatible
	sch *jsonschema.Schema
	// types are the schema's "type" names when "type" is all it asserts
	// (ReserveTicket's `status: {type: object}`): Validate then judges a
	// value of one of those types by its Go type, without the validator's
	// walk (a seventh of a transition's allocations).
	types []string
}

// Validate reports why v does not satisfy the schema, or nil. The error
// names the first failing place by JSON pointer; it wraps the validator's
// *jsonschema.ValidationError.
func (s *JSONSchema) Validate(v any) error {
	if s == nil || s.sch == nil {
		return nil
	}
	if s.types != nil && surelyOfType(s.types, v) {
		return nil
	}
	err := s.sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	probs := SchemaProblems(ve)
	if len(probs) == 0 {
		return err
	}
	return &SchemaError{Problems: probs, err: ve}
}

// SchemaError is a value that does not satisfy a JSONSchema.
type SchemaError struct {
	Problems []SchemaProblem
	err      error
}

func (e *SchemaError) Error() string {
	msgs := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		msgs = append(msgs, p.String())
	}
	return strings.Join(msgs, "; ")
}

func (e *SchemaError) Unwrap() error { return e.err }

// SchemaProblem is one leaf failure of a JSON Schema validation.
type SchemaProblem struct {
	Path    []string // JSON pointer tokens to the failing value
	Keyword string   // the failing keyword, e.g. "type", "required", "additionalProperties"
	Message string
	// Props names the properties involved for required/additionalProperties.
	Props []string
}

func (p SchemaProblem) String() string {
	return fmt.Sprintf("at %s: %s", pointer(p.Path), p.Message)
}

func pointer(path []string) string {
	if len(path) == 0 {
		return "'/'"
	}
	esc := make([]string, len(path))
	for i, t := range path {
		esc[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
	}
	return "'/" + strings.Join(esc, "/") + "'"
}

var printer = message.NewPrinter(language.English)

// SchemaProblems flattens a validation error to its leaves, deepest first
// and then in document order, so the most specific complaint leads.
func SchemaProblems(ve *jsonschema.ValidationError) []SchemaProblem {
	var out []SchemaProblem
	var visit func(e *jsonschema.ValidationError)
	visit = func(e *jsonschema.ValidationError) {
		if pn, ok := e.ErrorKind.(*kind.PropertyNames); ok {
			// The name was validated as an instance of its own; report it
			// at the key, with the reason from below.
			msg := fmt.Sprintf("property name '%s' is not allowed", pn.Property)
			if sub := SchemaProblems(&jsonschema.ValidationError{ErrorKind: &kind.Group{}, Causes: e.Causes}); len(sub) > 0 {
				msg += ": " + sub[0].Message
			}
			out = append(out, SchemaProblem{Path: e.InstanceLocation, Keyword: "propertyNames", Message: msg, Props: []string{pn.Property}})
			return
		}
		if len(e.Causes) > 0 {
			causes := e.Causes
			switch e.ErrorKind.(type) {
			case *kind.OneOf, *kind.AnyOf:
				causes = bestBranches(causes)
			}
			for _, c := range causes {
				visit(c)
			}
			return
		}
		p := SchemaProblem{Path: e.InstanceLocation, Message: e.ErrorKind.LocalizedString(printer)}
		if kp := e.ErrorKind.KeywordPath(); len(kp) > 0 {
			p.Keyword = kp[len(kp)-1]
		}
		p.Props = propsOf(e.ErrorKind)
		if _, ok := e.ErrorKind.(*kind.FalseSchema); ok {
			p.Keyword = "false"
			if len(p.Path) > 0 {
				p.Message = fmt.Sprintf("'%s' is not allowed here", p.Path[len(p.Path)-1])
			}
		}
		out = append(out, p)
	}
	visit(ve)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].Path) > len(out[j].Path) })
	seen := map[string]bool{}
	uniq := out[:0]
	for _, p := range out {
		key := strings.Join(p.Path, "\x00") + "\x01" + p.Message
		if !seen[key] {
			seen[key] = true
			uniq = append(uniq, p)
		}
	}
	return uniq
}

// bestBranches keeps, of the failed branches of a oneOf/anyOf, those that
// got deepest into the instance: the branch the author most likely meant.
func bestBranches(causes []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	depth := func(e *jsonschema.ValidationError) int {
		d := len(e.InstanceLocation)
		var walk func(*jsonschema.ValidationError)
		walk = func(x *jsonschema.ValidationError) {
			if len(x.InstanceLocation) > d {
				d = len(x.InstanceLocation)
			}
			for _, c := range x.Causes {
				walk(c)
			}
		}
		walk(e)
		return d
	}
	best, out := -1, []*jsonschema.ValidationError(nil)
	for _, c := range causes {
		switch d := depth(c); {
		case d > best:
			best, out = d, []*jsonschema.ValidationError{c}
		case d == best:
			out = append(out, c)
		}
	}
	return out
}

// NodeAt finds the YAML node a JSON pointer names inside n, and for a
// property path the key node, which is where "unexpected property" belongs.
// It stops at the deepest node that exists.
func NodeAt(n *yaml.Node, path []string) (value, key *yaml.Node) {
	value = resolve(n)
	for _, tok := range path {
		switch value.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(value.Content); i += 2 {
				if k := resolve(value.Content[i]); k.Value == tok {
					key, value = value.Content[i], resolve(value.Content[i+1])
					found = true
					break
				}
			}
			if !found {
				return value, key
			}
		case yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(value.Content) {
				return value, key
			}
			key, value = nil, resolve(value.Content[i])
		default:
			return value, key
		}
	}
	return value, key
}

// ProblemNode is where a schema problem belongs in the YAML: the offending
// key for an unexpected property, else the value.
func ProblemNode(root *yaml.Node, p SchemaProblem) *yaml.Node {
	v, _ := NodeAt(root, p.Path)
	if p.Keyword == "false" && len(p.Path) > 0 {
		// A property the schema forbids by name: point at its key.
		if _, k := NodeAt(root, p.Path); k != nil {
			return k
		}
	}
	if p.Keyword == "additionalProperties" || p.Keyword == "unevaluatedProperties" || p.Keyword == "propertyNames" {
		if len(p.Props) > 0 {
			if _, k := NodeAt(v, []string{p.Props[0]}); k != nil {
				return k
			}
		}
	}
	return v
}

func propsOf(k jsonschema.ErrorKind) []string {
	switch k := k.(type) {
	case *kind.AdditionalProperties:
		return k.Properties
	case *kind.Required:
		return k.Missing
	case *kind.PropertyNames:
		return []string{k.Property}
	case *kind.DependentRequired:
		return k.Missing
	}
	return nil
}

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %s is not allowed: a workflow schema must be self-contained", url)
}

// compileSchema compiles the JSON Schema written at node n, reporting where
// it is invalid.
func (p *parser) compileSchema(field string, key, n *yaml.Node) *JSONSchema {
	raw := p.toJSON(n)
	switch raw.(type) {
	case map[string]any, bool:
	default:
		p.errorf(nodePos(n), CodeJSONSchema, "'%s' must be a JSON Schema (a mapping or a boolean), not %s", field, kindName(n))
		return nil
	}
	sch, err := CompileSchema("workflow:"+field, raw)
	if err != nil {
		var sve *jsonschema.SchemaValidationError
		var ve *jsonschema.ValidationError
		if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
			probs := SchemaProblems(ve)
			if len(probs) > 0 {
				pr := probs[0]
				at := ProblemNode(n, pr)
				p.errorf(nodePos(at), CodeJSONSchema, "'%s' is not a valid JSON Schema: %s", field, pr.Message)
				return nil
			}
		}
		p.errorf(nodePos(n), CodeJSONSchema, "'%s' is not a valid JSON Schema: %s", field, schemaErrText(err))
		return nil
	}
	return &JSONSchema{Pos: nodePos(key), Raw: raw, sch: sch, types: onlyTypes(raw)}
}

// onlyTypes is the type names of a schema that asserts nothing but
// "type" (annotations aside), or nil.
func onlyTypes(raw any) []string {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil
	}
	var types []string
	for k, x := range m {
		switch k {
		case "type":
			switch t := x.(type) {
			case string:
				types = append(types, t)
			case []any:
				for _, e := range t {
					name, ok := e.(string)
					if !ok {
						return nil
					}
					types = append(types, name)
				}
			default:
				return nil
			}
		case "description", "title", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly":
			// Annotations: they assert nothing.
		default:
			return nil
		}
	}
	return types
}

// surelyOfType reports whether v, a decoded JSON value, is of one of the
// named types beyond doubt; false leaves it to the validator (integers,
// and Go types a decoder does not make).
func surelyOfType(types []string, v any) bool {
	var got string
	switch v.(type) {
	case map[string]any:
		got = "object"
	case []any:
		got = "array"
	case string:
		got = "string"
	case bool:
		got = "boolean"
	case nil:
		got = "null"
	case float64:
		got = "number"
	default:
		return false
	}
	for _, t := range types {
		if t == got {
			return true
		}
	}
	return false
}

// CompileSchema compiles a JSON-compatible schema document with cairn's
// settings: draft 2020-12 by default, format assertions on, nothing loaded.
func CompileSchema(name string, doc any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	url := "mem:///" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

func schemaErrText(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "mem:///workflow:", "")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
