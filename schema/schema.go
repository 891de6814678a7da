// Package schema holds the JSON Schema of the workflow language and lints workflow files against it and the dsl checks.
package schema

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/dsl"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

//go:embed workflow.schema.json
var schemaJSON []byte

// JSON returns the text of the workflow language's JSON Schema (draft
// 2020-12), the file editors point at with
// `# yaml-language-server: $schema=...`.
func JSON() []byte {
	out := make([]byte, len(schemaJSON))
	copy(out, schemaJSON)
	return out
}

// compiled is the schema compiled once; the embedded file is part of the
// binary, so failing to compile it is a programming error caught by tests.
var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(schemaJSON)))
	if err != nil {
		return nil, fmt.Errorf("schema: workflow.schema.json: %w", err)
	}
	return dsl.CompileSchema("workflow.schema", doc)
})

// Lint checks one workflow source with the JSON Schema and with dsl.Parse
// and returns every problem, sorted by position. A schema complaint about a
// node is dropped when dsl.Parse reported a problem inside that node or on
// its line: the
// parser's message names the actual mistake, the schema's only the place.
func Lint(filename string, src []byte) dsl.Issues {
	var issues dsl.Issues
	if wf, err := dsl.Parse(filename, src); err != nil {
		var is dsl.Issues
		if errors.As(err, &is) {
			issues = append(issues, is...)
		} else {
			issues = append(issues, dsl.Issue{File: filename, Pos: dsl.Pos{Line: 1, Col: 1}, Severity: dsl.SevError, Code: dsl.CodeYAMLSyntax, Message: err.Error()})
		}
	} else {
		issues = append(issues, wf.Warnings...)
	}
	parsed := len(issues)
	for _, sp := range validate(filename, src) {
		covered := false
		for _, is := range issues[:parsed] {
			if is.Pos.Line == sp.Pos.Line || (sp.node != nil && within(is.Pos, sp.node)) {
				covered = true
				break
			}
		}
		if !covered {
			issues = append(issues, sp.Issue)
		}
	}
	sortIssues(issues)
	return issues
}

// within reports whether pos falls inside the source span of node n.
func within(pos dsl.Pos, n *yaml.Node) bool {
	start := dsl.Pos{Line: n.Line, Col: n.Column}
	end := spanEnd(n, 0)
	return !before(pos, start) && !before(end, pos)
}

func before(a, b dsl.Pos) bool {
	return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
}

// spanEnd approximates where a node ends: the end of its last scalar.
func spanEnd(n *yaml.Node, depth int) dsl.Pos {
	end := dsl.Pos{Line: n.Line, Col: n.Column + len([]rune(n.Value))}
	if depth > 100 {
		return end
	}
	for _, c := range n.Content {
		if e := spanEnd(c, depth+1); before(end, e) {
			end = e
		}
	}
	return end
}

// schemaIssue is a schema complaint and the node it is about.
type schemaIssue struct {
	dsl.Issue
	node *yaml.Node
}

// Validate checks a workflow source against the JSON Schema alone: the YAML
// problems that keep it from being a JSON document, or the schema's
// complaints mapped to YAML positions (at most one per place, the most
// specific first).
func Validate(filename string, src []byte) dsl.Issues {
	var out dsl.Issues
	for _, si := range validate(filename, src) {
		out = append(out, si.Issue)
	}
	return out
}

func validate(filename string, src []byte) []schemaIssue {
	fail := func(msg string) []schemaIssue {
		return []schemaIssue{{Issue: dsl.Issue{File: filename, Pos: dsl.Pos{Line: 1, Col: 1}, Severity: dsl.SevError, Code: dsl.CodeSchemaViolation, Message: msg}}}
	}
	root, doc, yamlIssues := dsl.ReadYAML(filename, src)
	if len(yamlIssues) > 0 {
		out := make([]schemaIssue, len(yamlIssues))
		for i, is := range yamlIssues {
			out[i] = schemaIssue{Issue: is}
		}
		return out
	}
	sch, err := compiled()
	if err != nil {
		return fail(err.Error())
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fail(err.Error())
	}
	var out []schemaIssue
	seen := map[dsl.Pos]bool{}
	for _, pr := range dsl.SchemaProblems(ve) {
		n := dsl.ProblemNode(root, pr)
		pos := dsl.Pos{Line: n.Line, Col: n.Column}
		if seen[pos] {
			continue
		}
		seen[pos] = true
		out = append(out, schemaIssue{node: n, Issue: dsl.Issue{File: filename, Pos: pos, Severity: dsl.SevError, Code: dsl.CodeSchemaViolation,
			Message: fmt.Sprintf("the workflow schema rejects %s: %s", describePath(pr.Path), pr.Message)}})
	}
	sort.SliceStable(out, func(i, j int) bool { return before(out[i].Pos, out[j].Pos) })
	return out
}

func describePath(path []string) string {
	if len(path) == 0 {
		return "the document"
	}
	return "/" + strings.Join(path, "/")
}

func sortIssues(is dsl.Issues) {
	sort.SliceStable(is, func(i, j int) bool {
		a, b := is[i].Pos, is[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// FormatText renders issues for people: each as
// `file:line:col: severity: message [code]`, then the source line and a
// caret under the column.
func FormatText(issues dsl.Issues, src []byte) string {
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	var sb strings.Builder
	for _, is := range issues {
		sb.WriteString(is.String())
		sb.WriteByte('\n')
		if is.Pos.Line < 1 || is.Pos.Line > len(lines) {
			continue
		}
		line := []rune(lines[is.Pos.Line-1])
		// Tabs become single spaces so the caret stays under its column.
		text := strings.ReplaceAll(string(line), "\t", " ")
		sb.WriteString("    ")
		sb.WriteString(text)
		sb.WriteString("\n    ")
		col := is.Pos.Col - 1
		if col < 0 {
			col = 0
		}
		if col > len(line) {
			col = len(line)
		}
		sb.WriteString(strings.Repeat(" ", col))
		sb.WriteString("^\n")
	}
	return sb.String()
}

// jsonIssue is the flat shape of an issue for editors and CI.
type jsonIssue struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// FormatJSON renders issues as a JSON array of
// {file, line, col, severity, code, message}; no issues is [].
func FormatJSON(issues dsl.Issues) []byte {
	out := make([]jsonIssue, len(issues))
	for i, is := range issues {
		out[i] = jsonIssue{File: is.File, Line: is.Pos.Line, Col: is.Pos.Col, Severity: string(is.Severity), Code: is.Code, Message: is.Message}
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return append(b, '\n')
}
