package dsl

import (
	"strconv"
	"unicode"

	"gopkg.in/yaml.v3"
)

// scalarPositions returns the source position of every rune of a scalar's
// value, so that an expression error can point at the offending token inside
// the scalar rather than at its key. YAML unescapes quoted scalars and folds
// line breaks, so the value is matched against the source text style by
// style. It returns nil when the two cannot be matched (unusual spellings of
// block scalars, for instance); callers then fall back to the scalar's start.
func (p *parser) scalarPositions(n *yaml.Node) []Pos {
	lines := p.sourceLines()
	value := []rune(n.Value)
	l, c := n.Line-1, n.Column-1
	if l < 0 || l >= len(lines) || c < 0 {
		return nil
	}
	m := matcher{lines: lines, l: l, c: c, value: value}
	m.skipProperties()
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if !m.expect('"') {
			return nil
		}
		m.escapes = true
	case n.Style&yaml.SingleQuotedStyle != 0:
		if !m.expect('\'') {
			return nil
		}
		m.quotes = true
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// Content starts on the line after the indicator.
		m.l++
		m.c = 0
		m.toContent()
	}
	if !m.run() {
		return nil
	}
	return m.out
}

type matcher struct {
	lines   [][]rune
	l, c    int
	value   []rune
	i       int
	out     []Pos
	escapes bool // double-quoted: backslash escapes
	quotes  bool // single-quoted: '' is one quote
}

func (m *matcher) at() (rune, bool) {
	if m.l >= len(m.lines) || m.c >= len(m.lines[m.l]) {
		return 0, false
	}
	return m.lines[m.l][m.c], true
}

func (m *matcher) expect(r rune) bool {
	if got, ok := m.at(); ok && got == r {
		m.c++
		return true
	}
	return false
}

// skipProperties steps over a tag (!!str) or an anchor (&a) written before
// the scalar, which yaml.v3 includes in the node's position.
func (m *matcher) skipProperties() {
	for {
		r, ok := m.at()
		if !ok || (r != '!' && r != '&') {
			return
		}
		for ok && r != ' ' && r != '\t' {
			m.c++
			r, ok = m.at()
		}
		for ok && (r == ' ' || r == '\t') {
			m.c++
			r, ok = m.at()
		}
		if !ok { // the scalar starts on the next line
			m.l++
			m.c = 0
			m.toContent()
		}
	}
}

// restBlank reports whether only blanks remain on the current line.
func (m *matcher) restBlank() bool {
	if m.l >= len(m.lines) {
		return true
	}
	for _, r := range m.lines[m.l][m.c:] {
		if r != ' ' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// nextLine moves to the first non-blank character of the next non-blank line.
func (m *matcher) nextLine() {
	m.l++
	m.c = 0
	for m.l < len(m.lines) && isBlankLine(m.lines[m.l]) {
		m.l++
	}
	m.toContent()
}

func (m *matcher) toContent() {
	for m.l < len(m.lines) && isBlankLine(m.lines[m.l]) {
		m.l++
	}
	for {
		r, ok := m.at()
		if !ok || (r != ' ' && r != '\t') {
			return
		}
		m.c++
	}
}

func isBlankLine(l []rune) bool {
	for _, r := range l {
		if r != ' ' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

func (m *matcher) emit() {
	m.out = append(m.out, Pos{m.l + 1, m.c + 1})
	m.i++
}

func (m *matcher) run() bool {
	for m.i < len(m.value) {
		if m.l >= len(m.lines) {
			return false
		}
		v := m.value[m.i]
		r, ok := m.at()
		if ok && m.escapes && r == '\\' {
			if !m.escape(v) {
				return false
			}
			continue
		}
		if ok && m.quotes && r == '\'' && v == '\'' && m.c+1 < len(m.lines[m.l]) && m.lines[m.l][m.c+1] == '\'' {
			m.emit()
			m.c += 2
			continue
		}
		if ok && r == v {
			m.emit()
			m.c++
			continue
		}
		if m.restBlank() {
			// A line break that YAML folded into a space or a newline:
			// the value's run of white space maps to the end of the line.
			if unicode.IsSpace(v) {
				for m.i < len(m.value) && unicode.IsSpace(m.value[m.i]) {
					m.out = append(m.out, Pos{m.l + 1, m.c + 1})
					m.i++
				}
			}
			m.nextLine()
			continue
		}
		return false
	}
	return true
}

// escape matches one backslash escape of a double-quoted scalar against the
// value rune v.
func (m *matcher) escape(v rune) bool {
	line := m.lines[m.l]
	if m.c+1 >= len(line) {
		// An escaped line break: no value rune, continue on the next line.
		m.nextLine()
		return true
	}
	start := m.c
	var r rune
	width := 2
	switch e := line[m.c+1]; e {
	case '0':
		r = 0
	case 'a':
		r = '\a'
	case 'b':
		r = '\b'
	case 't', '\t':
		r = '\t'
	case 'n':
		r = '\n'
	case 'v':
		r = '\v'
	case 'f':
		r = '\f'
	case 'r':
		r = '\r'
	case 'e':
		r = 0x1b
	case ' ', '"', '/', '\\':
		r = e
	case 'N':
		r = 0x85
	case '_':
		r = 0xa0
	case 'L':
		r = 0x2028
	case 'P':
		r = 0x2029
	case 'x', 'u', 'U':
		digits := map[rune]int{'x': 2, 'u': 4, 'U': 8}[e]
		if m.c+2+digits > len(line) {
			return false
		}
		n, err := strconv.ParseUint(string(line[m.c+2:m.c+2+digits]), 16, 32)
		if err != nil {
			return false
		}
		r = rune(n)
		width = 2 + digits
	default:
		return false
	}
	if r != v {
		return false
	}
	m.c = start
	m.emit()
	m.c = start + width
	return true
}
