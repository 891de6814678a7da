package dsl

// Decoding JSON text into the values expressions see, without reflection:
// the engine decodes the input, every variable a thread sees and each
// result and event payload on every transition, and json.Unmarshal into
// an any (its decodeState, the reflect.Value, a scan of the text before
// the decoding) led the interpreter's allocations after the encoder
// (issue 20).

import (
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeJSON returns what json.Unmarshal(raw, &v) leaves in an any v,
// and its error. Text of well-formed JSON whose numbers all fit a
// float64 is decoded directly; anything else (a syntax error, a number
// out of range, nesting deeper than maxJSONDepth) is json.Unmarshal's.
func DecodeJSON(raw []byte) (any, error) {
	d := decoder{s: raw}
	d.space()
	if v, ok := d.value(0); ok {
		if d.space(); d.i == len(d.s) {
			return v, nil
		}
	}
	var v any
	err := json.Unmarshal(raw, &v)
	return v, err
}

// decoder reads one JSON text; each method reports false where the text
// leaves the direct path, and DecodeJSON then starts over with
// json.Unmarshal.
type decoder struct {
	s []byte
	i int
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, bool) {
	if d.i >= len(d.s) || depth > maxJSONDepth {
		return nil, false
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		s, ok := d.str()
		if !ok {
			return nil, false
		}
		return s, true
	case c == 'n':
		return nil, d.word("null")
	case c == 't':
		return true, d.word("true")
	case c == 'f':
		return false, d.word("false")
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	}
	return nil, false
}

func (d *decoder) word(w string) bool {
	if len(d.s)-d.i < len(w) || string(d.s[d.i:d.i+len(w)]) != w {
		return false
	}
	d.i += len(w)
	return true
}

func (d *decoder) object(depth int) (any, bool) {
	d.i++ // {
	m := make(map[string]any)
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return m, true
	}
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, false
		}
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, false
		}
		d.i++
		d.space()
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v // a repeated key: the last one wins, as in Unmarshal
		more, ok := d.after('}')
		if !ok {
			return nil, false
		}
		if !more {
			return m, true
		}
	}
}

func (d *decoder) array(depth int) (any, bool) {
	d.i++ // [
	// The elements gather on the stack and are copied out at their
	// final length; Unmarshal's [] is empty, not nil.
	var small [8]any
	items := small[:0]
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return []any{}, true
	}
	for {
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		items = append(items, v)
		more, ok := d.after(']')
		if !ok {
			return nil, false
		}
		if !more {
			return append([]any(nil), items...), true
		}
	}
}

// after reads what follows a member or an element: a comma (more) or the
// closing byte (done); anything else is not JSON.
func (d *decoder) after(closing byte) (more, ok bool) {
	d.space()
	if d.i >= len(d.s) {
		return false, false
	}
	switch d.s[d.i] {
	case ',':
		d.i++
		d.space()
		return true, true
	case closing:
		d.i++
		return false, true
	}
	return false, false
}

// number reads a number as JSON's grammar has it and converts it as
// Unmarshal does, with strconv.ParseFloat; one out of float64's range is
// left to Unmarshal, whose error it is.
func (d *decoder) number() (any, bool) {
	start := d.i
	integer := true // no sign, fraction or exponent
	if d.s[d.i] == '-' {
		d.i++
		integer = false
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
	case d.i < len(d.s) && '1' <= d.s[d.i] && d.s[d.i] <= '9':
		d.digits()
	default:
		return nil, false
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		integer = false
		if !d.digits() {
			return nil, false
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		integer = false
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if !d.digits() {
			return nil, false
		}
	}
	text := d.s[start:d.i]
	if integer && len(text) <= 3 {
		// 0..999, exactly: small ones share a boxed value.
		n := 0
		for _, c := range text {
			n = n*10 + int(c-'0')
		}
		if n < len(smallFloats) {
			return smallFloats[n], true
		}
		return float64(n), true
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return nil, false
	}
	return f, true
}

// digits reads one or more digits.
func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

// str reads a string, its escapes resolved as Unmarshal resolves them:
// an invalid byte or a lone surrogate becomes U+FFFD.
func (d *decoder) str() (string, bool) {
	d.i++ // "
	start := d.i
	// The common case: no escape, ASCII or valid UTF-8, taken as is.
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			s := string(d.s[start:d.i])
			d.i++
			return s, true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.s[d.i:])
			if r == utf8.RuneError && size == 1 {
				return d.escaped(start)
			}
			d.i += size
		}
	}
	return "", false
}

// escaped goes on reading the string that began at start, from d.i,
// into a copy where escapes and invalid bytes are rewritten.
func (d *decoder) escaped(start int) (string, bool) {
	b := make([]byte, 0, d.i-start+16)
	b = append(b, d.s[start:d.i]...)
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if d.i+1 >= len(d.s) {
				return "", false
			}
			switch e := d.s[d.i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(d.s[d.i+2:])
				if r < 0 {
					return "", false
				}
				d.i += 6
				if utf16.IsSurrogate(r) {
					// A pair when a low surrogate follows; else, as in
					// Unmarshal, U+FFFD and what follows read on its own.
					var r2 rune = -1
					if d.i+1 < len(d.s) && d.s[d.i] == '\\' && d.s[d.i+1] == 'u' {
						r2 = hex4(d.s[d.i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						d.i += 6
						r = dec
					} else {
						r = unicode.ReplacementChar
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return "", false
			}
			d.i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.s[d.i:])
			d.i += size
			b = utf8.AppendRune(b, r) // an invalid byte: U+FFFD
		}
	}
	return "", false
}

// hex4 is the rune of four hex digits at the start of s, or -1.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
