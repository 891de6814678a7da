package dsl

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// jsonCases are values whose text is easy to get wrong: escapes, numbers
// at the exponent cutoffs, nil and empty containers, key order.
var jsonCases = []any{
	nil, true, false, 0.0, math.Copysign(0, -1), 1.0, -1.5, 0.1, 1e20, 1e21, 123456789012345678.0, 1e-6, 9.99e-7, 1e-7, 5e-324, math.MaxFloat64, -1e-9, 1e100,
	"", "a", "<&>", `"\`, "\x00\x01\x1f\x7f\t\n\r\b\f", "\xff\xfe", "a\xffb", "é😀", "\u2028\u2029", "\ufffd",
	[]any{}, []any(nil), []any{nil, 1.0, "x", []any{}},
	map[string]any{}, map[string]any(nil), map[string]any{"b": 1.0, "a": 2.0, "A": 3.0, "<": "&", "é": nil, "": []any{map[string]any{"z": true, "y": false}}},
}

// notPlain are values EncodeJSON leaves to json.Marshal.
var notPlain = []any{
	math.NaN(), math.Inf(1), []any{1.0, math.Inf(-1)}, map[string]any{"x": math.NaN()},
	1, int64(2), json.Number("3"), json.RawMessage(`{"b":1, "a":2}`), []string{"x"}, map[string]int{"a": 1}, struct{ A int }{1}, func() {},
}

func TestEncodeJSONIsMarshal(t *testing.T) {
	for _, v := range append(append([]any{}, jsonCases...), notPlain...) {
		checkEncodeJSON(t, v)
	}
	// Deeper than appendJSON goes, and a cycle: json.Marshal's answers.
	deep := any(1.0)
	for range maxJSONDepth + 10 {
		deep = []any{deep}
	}
	checkEncodeJSON(t, deep)
	cyc := map[string]any{}
	cyc["self"] = cyc
	if _, err := EncodeJSON(cyc); err == nil {
		t.Error("a cycle has no JSON")
	}
	// More keys than the stack holds.
	big := map[string]any{}
	for i := range 100 {
		big[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('0'+i/26))] = float64(i)
	}
	checkEncodeJSON(t, big)
}

func checkEncodeJSON(t *testing.T, v any) {
	t.Helper()
	got, err := EncodeJSON(v)
	want, werr := json.Marshal(v)
	if string(got) != string(want) || (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Errorf("EncodeJSON(%#v) = %s, %v; json.Marshal gives %s, %v", v, got, err, want, werr)
	}
}

func FuzzEncodeJSON(f *testing.F) {
	for _, v := range jsonCases {
		if s, ok := v.(string); ok {
			f.Add(s, 0.0)
		}
		if x, ok := v.(float64); ok {
			f.Add("", x)
		}
	}
	f.Fuzz(func(t *testing.T, s string, x float64) {
		checkEncodeJSON(t, x)
		checkEncodeJSON(t, map[string]any{s: []any{s, x}, s + "<": nil})
		// Any JSON text, decoded as the engine decodes variables.
		var v any
		if json.Unmarshal([]byte(s), &v) == nil {
			checkEncodeJSON(t, v)
		}
	})
}
