package activity

import (
	"encoding/json"
	"reflect"
	"testing"
)

// quickCases are JSON texts, valid or not, for the fast paths that stand
// in for json.Unmarshal.
var quickCases = []string{
	``, ` `, `1`, `-0`, `15`, `1.5e3`, `-1E-7`, `1e308`, `1e309`, `-1e400`, `1e-400`, `01`, `1.`, `.5`, `+1`, `-`,
	`123456789012345678901234567890`, `[1,2e500]`, `{"a":1e999}`, `{"1e999":1}`, `"1e999"`, `{"a\"1e999":2}`,
	`true`, `false`, `null`, `nul`, `True`, ` true`, `true `, `"x"`, `""`, `"user1"`, `"a\"b"`, `"a\\"`, `"\u00e9"`,
	"\"\xff\"", "\"caf\xc3\xa9\"", "\"tab\there\"", "\"\x7f\"", "\"\u2028\"", `"unterminated`, `"`, `"a"b"`,
	` "x"`, `"x" `, `[]`, `{}`, `[1,2,3]`, `{"a":[1,{"b":null}],"c":"d"}`, `[1,]`, `{"a":1,}`, `[1 2]`,
	`{"a":-1.25e+2,"b":[0,-0.0,1e-5]}`, `[` + "\n" + `1 ]`, `{"é":"\ud800"}`, `[[[[[]]]]]`,
}

// TestReadableIsUnmarshal: readable is true exactly when json.Unmarshal
// reads the text into an any without an error.
func TestReadableIsUnmarshal(t *testing.T) {
	for _, c := range quickCases {
		var v any
		want := json.Unmarshal([]byte(c), &v) == nil
		if got := readable([]byte(c)); got != want {
			t.Errorf("readable(%q) = %v, Unmarshal succeeds: %v", c, got, want)
		}
	}
}

// TestPlainInputIsUnmarshal: what plainInput reads is json.Unmarshal's
// value, type and all.
func TestPlainInputIsUnmarshal(t *testing.T) {
	took := 0
	for _, c := range quickCases {
		got, ok := plainInput([]byte(c))
		if !ok {
			continue
		}
		took++
		var want any
		if err := json.Unmarshal([]byte(c), &want); err != nil {
			t.Errorf("plainInput(%q) = %#v, Unmarshal fails: %v", c, got, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("plainInput(%q) = %#v, Unmarshal: %#v", c, got, want)
		}
	}
	if took < 8 {
		t.Errorf("plainInput took only %d of the cases", took)
	}
}

// FuzzQuickPaths holds readable and plainInput to json.Unmarshal.
func FuzzQuickPaths(f *testing.F) {
	for _, c := range quickCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v any
		err := json.Unmarshal(raw, &v)
		if got := readable(raw); got != (err == nil) {
			t.Fatalf("readable(%q) = %v, Unmarshal: %v", raw, got, err)
		}
		if got, ok := plainInput(raw); ok && (err != nil || !reflect.DeepEqual(got, v)) {
			t.Fatalf("plainInput(%q) = %#v, Unmarshal: %#v, %v", raw, got, v, err)
		}
	})
}
