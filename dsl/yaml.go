package dsl

import (
	"bytes"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on what Parse accepts, so that a hostile definition (a PUT to the
// API, a fuzzer) costs bounded time and memory.
const (
	// MaxSourceBytes is the largest workflow source Parse reads.
	MaxSourceBytes = 1 << 20
	// maxDepth bounds how deeply YAML collections nest; real workflows stay
	// far below it and the recursive decoders stay shallow.
	maxDepth = 64
	// maxExpandedNodes bounds the nodes seen when every alias is expanded,
	// which is what rejects a billion-laughs document before any decoder
	// follows its aliases.
	maxExpandedNodes = 100_000
)

// loadYAML reads src into a document node, reporting syntax errors, several
// documents, and the limits above. It returns nil when nothing more should be
// looked at.
func (p *parser) loadYAML() *yaml.Node {
	if len(p.src) > MaxSourceBytes {
		p.errorf(Pos{1, 1}, CodeSourceTooLarge, "the file is %d bytes; a workflow may be at most %d bytes", len(p.src), MaxSourceBytes)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(p.src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(Pos{1, 1}, CodeYAMLDocuments, "the file is empty; a workflow needs at least name and steps")
			return nil
		}
		p.yamlError(err)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.errorf(nodePos(&next), CodeYAMLDocuments, "a workflow file holds one YAML document; remove this second one")
		return nil
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.errorf(Pos{1, 1}, CodeYAMLDocuments, "the file holds no workflow")
		return nil
	}
	w := walker{p: p}
	w.walk(doc.Content[0], 0)
	if w.stop {
		return nil
	}
	return doc.Content[0]
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 error, whose only location is a line number in
// its text, into an issue on that line.
func (p *parser) yamlError(err error) {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	pos := Pos{1, 1}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		pos = Pos{line, p.firstCol(line)}
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	p.errorf(pos, CodeYAMLSyntax, "invalid YAML: %s", msg)
}

// firstCol is the column of the first non-blank character of a line, so a
// line-only error still has a caret under something.
func (p *parser) firstCol(line int) int {
	ls := p.sourceLines()
	if line < 1 || line > len(ls) {
		return 1
	}
	for i, r := range ls[line-1] {
		if r != ' ' && r != '\t' {
			return i + 1
		}
	}
	return 1
}

// walker checks the raw YAML tree once, before any decoder runs: depth,
// alias expansion, duplicate and non-string keys, merge keys, tags.
type walker struct {
	p     *parser
	seen  int
	stop  bool
	alias int // >0 while inside an expanded alias: report nothing twice
}

func (w *walker) walk(n *yaml.Node, depth int) {
	if w.stop {
		return
	}
	w.seen++
	if w.seen > maxExpandedNodes {
		w.p.errorf(nodePos(n), CodeYAMLAliases, "the document expands to more than %d nodes (aliases that repeat too much); write it out or simplify it", maxExpandedNodes)
		w.stop = true
		return
	}
	if depth > maxDepth {
		w.p.errorf(nodePos(n), CodeYAMLTooDeep, "values are nested more than %d levels deep", maxDepth)
		w.stop = true
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return
		}
		w.alias++
		w.walk(n.Alias, depth+1)
		w.alias--
	case yaml.ScalarNode:
		if w.alias == 0 && !knownTag(n) {
			w.p.errorf(nodePos(n), CodeYAMLTag, "unsupported YAML tag %s", n.Tag)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			w.walk(c, depth+1)
		}
	case yaml.MappingNode:
		var keys map[string]*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if w.alias == 0 {
				switch {
				case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
					w.p.errorf(nodePos(n.Content[i]), CodeYAMLMerge, "merge keys (<<) are not supported; repeat the fields")
				case k.Kind != yaml.ScalarNode:
					w.p.errorf(nodePos(n.Content[i]), CodeYAMLKey, "a mapping key must be a plain string")
				default:
					if keys == nil {
						keys = make(map[string]*yaml.Node, len(n.Content)/2)
					}
					if first, dup := keys[k.Value]; dup {
						w.p.errorf(nodePos(n.Content[i]), CodeDuplicateKey, "duplicate key '%s' (first at %s)", k.Value, nodePos(first))
					} else {
						keys[k.Value] = n.Content[i]
					}
				}
			}
			w.walk(n.Content[i+1], depth+1)
		}
	}
}

// knownTag reports whether a scalar's tag is one cairn maps to JSON.
func knownTag(n *yaml.Node) bool {
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!binary", "!!merge":
		return true
	}
	return false
}

// resolve follows aliases to the node they name. The walker has already
// bounded how far that can go.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func nodePos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{1, 1}
	}
	return Pos{n.Line, n.Column}
}

// kindName names a YAML node kind for messages.
func kindName(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "nothing"
}

// isNull reports a YAML null (`~`, `null` or an empty value).
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isString reports a scalar that YAML reads as a string.
func isString(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!str" || n.ShortTag() == "!!timestamp")
}

// toJSON converts a YAML node to the JSON-compatible value it denotes.
// Problems (non-JSON numbers) are reported; the value is then best effort.
func (p *parser) toJSON(n *yaml.Node) any {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if _, dup := m[k.Value]; !dup {
				m[k.Value] = p.toJSON(n.Content[i+1])
			}
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = p.toJSON(c)
		}
		return s
	case yaml.ScalarNode:
		return p.scalarJSON(n)
	}
	return nil
}

func (p *parser) scalarJSON(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			p.errorf(nodePos(n), CodeNotJSON, "'%s' is not a number JSON can represent", n.Value)
			return nil
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			p.errorf(nodePos(n), CodeNotJSON, "'%s' is not a number JSON can represent", n.Value)
			return nil
		}
		return f
	}
	return n.Value
}

// pairs yields the key and value nodes of a mapping, aliases resolved for
// the values (keys are plain scalars; the walker reported any other).
func pairs(n *yaml.Node) [][2]*yaml.Node {
	n = resolve(n)
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue // reported by the walker
		}
		out = append(out, [2]*yaml.Node{k, n.Content[i+1]})
	}
	return out
}

// sourceLines splits the source into lines of runes, once, for locating
// positions inside scalars and for the caret lines of messages.
func (p *parser) sourceLines() [][]rune {
	if p.lines == nil {
		text := strings.ReplaceAll(string(p.src), "\r\n", "\n")
		parts := strings.Split(text, "\n")
		p.lines = make([][]rune, len(parts))
		for i, l := range parts {
			p.lines[i] = []rune(l)
		}
	}
	return p.lines
}

// ReadYAML reads a workflow source the way Parse does, under the same limits,
// and returns its root node and the JSON document it denotes, for tools that
// check the document as JSON (schema.Lint). The issues are the YAML-level
// problems; when there are any, root and doc are nil.
func ReadYAML(filename string, src []byte) (root *yaml.Node, doc any, issues Issues) {
	p := &parser{file: filename, src: src}
	root = p.loadYAML()
	if root != nil {
		doc = p.toJSON(root)
	}
	if len(p.issues) > 0 {
		p.sortIssues()
		return nil, nil, p.issues
	}
	return root, doc, nil
}
