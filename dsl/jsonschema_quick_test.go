package dsl

import (
	"encoding/json"
	"testing"
)

// TestOnlyTypesIsValidate: a schema that asserts only "type" judges every
// value as the validator does (the fast path never accepts what the
// validator refuses, nor the other way round).
func TestOnlyTypesIsValidate(t *testing.T) {
	schemas := []string{
		`{"type":"object"}`, `{"type":"array"}`, `{"type":"string","description":"d"}`,
		`{"type":"number"}`, `{"type":"integer"}`, `{"type":"boolean"}`, `{"type":"null"}`,
		`{"type":["object","null"],"title":"t"}`, `{"type":["integer","string"]}`,
		`{"type":"object","required":["a"]}`, `{"type":"string","maxLength":1}`, `{}`, `true`, `false`,
	}
	values := []string{
		`{}`, `{"a":1}`, `[]`, `[1,"x"]`, `"x"`, `"long string"`, `0`, `1.5`, `-3`, `1e300`,
		`true`, `false`, `null`,
	}
	var fast int
	for _, src := range schemas {
		var raw any
		if err := json.Unmarshal([]byte(src), &raw); err != nil {
			t.Fatal(err)
		}
		sch, err := CompileSchema("test", raw)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		s := &JSONSchema{Raw: raw, sch: sch, types: onlyTypes(raw)}
		for _, vsrc := range values {
			v, err := DecodeJSON([]byte(vsrc))
			if err != nil {
				t.Fatal(err)
			}
			want := sch.Validate(v) == nil
			if got := s.Validate(v) == nil; got != want {
				t.Errorf("schema %s, value %s: Validate says valid=%v, the validator %v", src, vsrc, got, want)
			}
			if s.types != nil && surelyOfType(s.types, v) {
				fast++
			}
		}
	}
	if fast == 0 {
		t.Fatal("the fast path never ran")
	}
}
