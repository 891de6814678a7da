package dsl

// JSON text of the values expressions yield, without reflection: the
// engine encodes every variable, activity input, status and output it
// stores, and encoding/json's map encoder (reflect values, a sorted copy
// of the keys, the buffer) led its allocations after the environment
// (issue 20).

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// EncodeJSON returns json.Marshal(v), byte for byte. Values of the shape
// Value.Eval yields (nil, bool, float64, string, []any, map[string]any)
// are written directly; anything else, and any error, is json.Marshal's.
func EncodeJSON(v any) ([]byte, error) {
	if b, ok := encodePlain(v); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// encodePlain is EncodeJSON's text for the values it writes itself, built
// in a pooled buffer and copied out at its final size; false for the rest.
func encodePlain(v any) ([]byte, bool) {
	bp := jsonBufs.Get().(*[]byte)
	b, ok := appendJSON((*bp)[:0], v, 0)
	var out []byte
	if ok {
		out = append([]byte(nil), b...)
	}
	if cap(b) <= maxPooledJSON {
		*bp = b
		jsonBufs.Put(bp)
	}
	return out, ok
}

// jsonBufs are EncodeJSON's scratch buffers: the text is built in one
// and copied out at its final size.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledJSON bounds a buffer kept for reuse, so that one large value
// does not stay in memory.
const maxPooledJSON = 64 << 10

// maxJSONDepth is where appendJSON gives up and leaves the value to
// json.Marshal, which detects cycles from about this depth on.
const maxJSONDepth = 500

// appendJSON appends v's JSON text as json.Marshal writes it, or reports
// false when v holds something else, a number JSON cannot write, or nests
// deeper than maxJSONDepth.
func appendJSON(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxJSONDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, x), true
	case float64:
		return appendFloat(b, x)
	case string:
		return AppendJSONString(b, x, true), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendJSON(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		// Sorted keys, as encoding/json writes them; a small map's keys
		// stay on the stack.
		var small [16]string
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, k, true)
			b = append(b, ':')
			var ok bool
			if b, ok = appendJSON(b, x[k], depth+1); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false
}

// appendFloat writes f as encoding/json's floatEncoder does for 64 bits:
// like %g with ES6's exponent cutoffs and no padding of the exponent.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s quoted as json.Marshal does: invalid UTF-8
// as U+FFFD, U+2028 and U+2029 escaped, and the HTML characters <, > and
// & escaped when html (json.Marshal's default; an Encoder with
// SetEscapeHTML(false) writes them as they are). redisstore's hand-written
// encoders use it too.
func AppendJSONString(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
