package dsl

import "testing"

func TestTemplateStart(t *testing.T) {
	for s, want := range map[string]int{"https://x/a": -1, "https://x/${ a }": 10, "https://x/$${ a }": -1, "$${a}${b}": 5} {
		if got := templateStart(s); got != want {
			t.Errorf("templateStart(%q) = %d, want %d", s, got, want)
		}
	}
}

// The types lint reads from a JSON Schema, as its messages show them.
func TestSchemaType(t *testing.T) {
	for _, c := range []struct {
		schema any
		closed bool
		want   string
	}{
		{map[string]any{"type": "integer"}, false, "integer"},
		{map[string]any{"type": []any{"string", "null"}}, false, "string | null"},
		{map[string]any{"enum": []any{"a", 1.5}}, false, "string | number"},
		{map[string]any{"type": "array", "items": map[string]any{"type": "number"}}, false, "list<number>"},
		{map[string]any{"properties": map[string]any{"a": map[string]any{"type": "boolean"}}}, false, "{a: boolean, ...}"},
		{map[string]any{"properties": map[string]any{"a": map[string]any{"type": "boolean"}}}, true, "{a: boolean}"},
		{map[string]any{"type": "object", "additionalProperties": true, "properties": map[string]any{"a": true}}, true, "{a: any, ...}"},
		{map[string]any{"$defs": map[string]any{"n": map[string]any{"type": "number"}}, "$ref": "#/$defs/n"}, false, "number"},
		{map[string]any{"$ref": "https://example.com/s.json"}, false, "any"},
		{true, false, "any"},
	} {
		if got := schemaType(c.schema, c.closed, "x").String(); got != c.want {
			t.Errorf("schemaType(%v, %v) = %s, want %s", c.schema, c.closed, got, c.want)
		}
	}
	if got := unionOf(tInt, tNumber, tNull, tInt).String(); got != "number | null" {
		t.Errorf("union = %s", got)
	}
	if got := unionOf(tString, tAny); got != tAny {
		t.Errorf("union with any = %s", got)
	}
}
