package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
)

// TestQuickValidIsValidate holds quickValid to the validator: it never
// passes an input the schema refuses, and it does pass the plain cases it
// is there for.
func TestQuickValidIsValidate(t *testing.T) {
	schemas := []string{
		`{type: string, minLength: 1, description: The user id.}`,
		`{type: string, maxLength: 3}`,
		`{type: [string, "null"]}`,
		`{type: boolean}`,
		`{type: number}`,
		`{type: integer}`,
		`{type: "null"}`,
		`{type: object}`,
		`{type: string, format: email}`,
		`{type: string, enum: [a, b]}`,
		`{type: string, pattern: "^a"}`,
		`{minLength: 2}`,
		`{title: anything}`,
		`{}`,
		`true`,
		`false`,
		`{$schema: "https://json-schema.org/draft/2020-12/schema", type: string}`,
	}
	inputs := []string{
		``, `null`, `"user1"`, `""`, `"é日本"`, `"abcd"`, `"a\"b"`, `"\u00e9"`, ` "ab" `,
		`true`, `false`, `1`, `-2.5`, `1e3`, `1.0`, `{}`, `{"a":1}`, `[]`, `["a"]`, `"a@b.c"`, `"b"`,
	}
	// Where quickValid must answer without the validator.
	sure := map[[2]string]bool{
		{schemas[0], `"user1"`}: true, {schemas[0], `"é日本"`}: true, {schemas[0], ` "ab" `}: true,
		{schemas[1], `"é日本"`}: true, {schemas[2], `null`}: true, {schemas[2], ``}: true,
		{schemas[3], `false`}: true, {schemas[4], `-2.5`}: true, {schemas[6], `null`}: true,
		{schemas[12], `{"a":1}`}: true, {schemas[13], `"b"`}: true, {schemas[14], `[]`}: true,
	}
	for _, src := range schemas {
		def, err := dsl.Parse("t.yaml", []byte("name: T\ninput: "+src+"\nsteps:\n  - return: 1\n"))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for _, in := range inputs {
			var v any
			if strings.TrimSpace(in) != "" {
				if err := json.Unmarshal([]byte(in), &v); err != nil {
					t.Fatal(err)
				}
			}
			quick := quickValid(def.Input, json.RawMessage(in))
			if err := def.Input.Validate(v); quick && err != nil {
				t.Errorf("schema %s, input %q: quickValid passes what the validator refuses: %v", src, in, err)
			}
			if sure[[2]string{src, in}] && !quick {
				t.Errorf("schema %s, input %q: quickValid leaves it to the validator", src, in)
			}
		}
	}
}
