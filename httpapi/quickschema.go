package httpapi

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/cairnhq/cairn/dsl"
)

// quickValid reports whether input (JSON; nil = null) surely satisfies
// sch, judging from the schema as written instead of running the
// validator, for the schemas inputs mostly have: a "type" of string,
// boolean, null or number (or a list of them), for strings with minLength
// and maxLength, and annotations. The validator decodes the input to a
// value and walks it, which was a tenth of a start's work in this package
// for `type: string`. false = let the validator judge (and word the
// refusal); quickValid never says true where it would refuse
// (TestQuickValidIsValidate).
func quickValid(sch *dsl.JSONSchema, input json.RawMessage) bool {
	if b, ok := sch.Raw.(bool); ok {
		return b
	}
	m, ok := sch.Raw.(map[string]any)
	if !ok {
		return false
	}
	v := bytes.TrimSpace(input)
	if len(v) == 0 {
		v = []byte("null")
	}
	for k, x := range m {
		switch k {
		case "type":
			if !typeIs(x, v) {
				return false
			}
		case "minLength", "maxLength":
			n, ok := x.(float64)
			if !ok || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
				return false // not a string, or one to decode before counting
			}
			l := float64(utf8.RuneCount(v[1 : len(v)-1]))
			if (k == "minLength" && l < n) || (k == "maxLength" && l > n) {
				return false
			}
		case "description", "title", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly":
			// Annotations: they assert nothing.
		default:
			return false
		}
	}
	return true // every keyword held or asserts nothing
}

// typeIs reports whether v, trimmed JSON, is of the type (or one of the
// types) t names, for the types the first byte tells apart with no doubt.
// A number is sure only without an exponent and short enough to fit a
// float64 (decodeJSON refuses the others for a start; signal-with-start's
// input has not been decoded).
func typeIs(t any, v []byte) bool {
	var got string
	switch c := v[0]; {
	case c == '"':
		got = "string"
	case c == 't' || c == 'f':
		got = "boolean"
	case c == 'n':
		got = "null"
	case c == '-' || ('0' <= c && c <= '9'):
		if len(v) > maxPlainNumber || bytes.ContainsAny(v, "eE") {
			return false
		}
		got = "number"
	default:
		return false // objects and arrays: the validator looks inside
	}
	switch t := t.(type) {
	case string:
		return t == got
	case []any:
		for _, x := range t {
			if x == got {
				return true
			}
		}
	}
	return false
}
