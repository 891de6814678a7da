package dsl

import "strings"

// segment is one piece of a string value: literal text, or the source of a
// `${ }` expression with its rune offset inside the string.
type segment struct {
	text   string
	isExpr bool
	off    int // rune offset of text within the whole string (expressions only)
	start  int // rune offset of the `${` (expressions only)
}

// templateError is a malformed `${`, located by rune offset in the string.
type templateError struct {
	off  int
	code string
	msg  string
}

// splitTemplate cuts a string into literal text and `${ expr }` pieces. `$${`
// stands for a literal `${`. The closing brace is found by tracking braces
// and string literals of the expression language, so `${ {a: "}"}.a }` works.
func splitTemplate(s string) ([]segment, *templateError) {
	if !strings.Contains(s, "${") {
		return []segment{{text: s}}, nil
	}
	rs := []rune(s)
	var segs []segment
	var lit []rune
	flush := func() {
		if len(lit) > 0 {
			segs = append(segs, segment{text: string(lit)})
			lit = nil
		}
	}
	for i := 0; i < len(rs); {
		if rs[i] == '$' && i+2 < len(rs) && rs[i+1] == '$' && rs[i+2] == '{' {
			lit = append(lit, '$', '{')
			i += 3
			continue
		}
		if rs[i] != '$' || i+1 >= len(rs) || rs[i+1] != '{' {
			lit = append(lit, rs[i])
			i++
			continue
		}
		start := i
		end := closingBrace(rs, i+2)
		if end < 0 {
			return nil, &templateError{off: start, code: CodeExprUnclosed, msg: "'${' has no closing '}'"}
		}
		src := string(rs[i+2 : end])
		if strings.TrimSpace(src) == "" {
			return nil, &templateError{off: start, code: CodeExprEmpty, msg: "'${ }' holds no expression"}
		}
		flush()
		segs = append(segs, segment{text: src, isExpr: true, off: i + 2, start: start})
		i = end + 1
	}
	flush()
	return segs, nil
}

// closingBrace returns the index of the `}` closing an expression that
// starts at i, or -1.
func closingBrace(rs []rune, i int) int {
	depth := 1
	for ; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		case '"', '\'', '`':
			j := i + 1
			for ; j < len(rs) && rs[j] != r; j++ {
				if rs[j] == '\\' && r != '`' {
					j++
				}
			}
			if j >= len(rs) {
				return -1
			}
			i = j
		}
	}
	return -1
}

// wholeExpr returns the single expression of a string that is nothing but
// one `${ }` (blank text around it aside), or -1.
func wholeExpr(segs []segment) int {
	idx := -1
	for i, s := range segs {
		if s.isExpr {
			if idx >= 0 {
				return -1
			}
			idx = i
		} else if strings.TrimSpace(s.text) != "" {
			return -1
		}
	}
	return idx
}
