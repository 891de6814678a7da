package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSchemaIsValid compiles the embedded schema, which checks it against
// its metaschema, and validates it once more explicitly against draft
// 2020-12.
func TestSchemaIsValid(t *testing.T) {
	if _, err := compiled(); err != nil {
		t.Fatalf("the embedded schema does not compile: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSON()))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.(map[string]any)["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", got)
	}
	c := jsonschema.NewCompiler()
	meta, err := c.Compile("https://json-schema.org/draft/2020-12/schema")
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.Validate(doc); err != nil {
		t.Errorf("the schema is not valid draft 2020-12: %v", err)
	}
}

type fixture struct {
	file         string
	src          []byte
	schemaAccept bool
	why          string
}

// corpus is every workflow the language tests know: the examples, the
// valid and warning fixtures, and the invalid fixtures with their second line saying
// whether the JSON Schema can see the mistake ("# schema: rejects") or not
// ("# schema: accepts: <why JSON Schema cannot express it>").
func corpus(t *testing.T) (valid, invalid []fixture) {
	t.Helper()
	read := func(pattern string) []fixture {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		var out []fixture
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fixture{file: f, src: src})
		}
		return out
	}
	// The warning fixtures are valid workflows: they run, and the schema
	// accepts them.
	valid = append(read("../workflows/*.yaml"), read("../dsl/testdata/valid/*.yaml")...)
	valid = append(valid, read("../dsl/testdata/warning/*.yaml")...)
	invalid = read("../dsl/testdata/invalid/*.yaml")
	for i, f := range invalid {
		lines := strings.SplitN(string(f.src), "\n", 3)
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "# schema: ") {
			t.Fatalf("%s: second line must be '# schema: rejects' or '# schema: accepts: <why>'", f.file)
		}
		verdict := strings.TrimPrefix(lines[1], "# schema: ")
		switch {
		case verdict == "rejects":
		case strings.HasPrefix(verdict, "accepts: ") && len(verdict) > len("accepts: "):
			invalid[i].schemaAccept = true
			invalid[i].why = strings.TrimPrefix(verdict, "accepts: ")
		default:
			t.Fatalf("%s: bad schema verdict %q", f.file, verdict)
		}
	}
	if len(valid) < 5 || len(invalid) < 40 {
		t.Fatalf("corpus too small: %d valid, %d invalid", len(valid), len(invalid))
	}
	return valid, invalid
}

// TestParity proves the JSON Schema and dsl.Parse agree on the corpus: both
// accept every valid workflow; both reject every invalid one whose mistake
// is structural; and on mistakes only the parser can see (expressions,
// flow, sizes, cross-field rules), the schema accepts, so it is never
// stricter than the language.
func TestParity(t *testing.T) {
	valid, invalid := corpus(t)
	for _, f := range valid {
		t.Run(filepath.Base(f.file), func(t *testing.T) {
			if _, err := dsl.Parse(f.file, f.src); err != nil {
				t.Errorf("dsl.Parse rejects a valid workflow:\n%v", err)
			}
			if is := Validate(f.file, f.src); len(is) > 0 {
				t.Errorf("the schema rejects a valid workflow:\n%v", is)
			}
		})
	}
	schemaRejects := 0
	for _, f := range invalid {
		t.Run(filepath.Base(f.file), func(t *testing.T) {
			if _, err := dsl.Parse(f.file, f.src); err == nil {
				t.Errorf("dsl.Parse accepts an invalid workflow")
			}
			is := Validate(f.file, f.src)
			switch {
			case f.schemaAccept && len(is) > 0:
				t.Errorf("the fixture says the schema cannot see this mistake (%s), but it rejects it:\n%v", f.why, is)
			case !f.schemaAccept && len(is) == 0:
				t.Errorf("the schema accepts a workflow with a structural mistake")
			case !f.schemaAccept:
				schemaRejects++
			}
		})
	}
	if schemaRejects < 30 {
		t.Errorf("only %d invalid fixtures are rejected by the schema; the parity claim needs more structural cases", schemaRejects)
	}
}

// TestLintWorkflows: every example workflow lints clean.
func TestLintWorkflows(t *testing.T) {
	files, err := filepath.Glob("../workflows/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("want the example workflows: %v %v", files, err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if is := Lint(f, src); len(is) > 0 {
			t.Errorf("%s does not lint clean:\n%s", f, FormatText(is, src))
		}
	}
}

// TestLintInvalid: Lint reports each invalid fixture, sorted, and its
// first issue is the parser's own (schema complaints only fill gaps).
func TestLintInvalid(t *testing.T) {
	_, invalid := corpus(t)
	for _, f := range invalid {
		is := Lint(f.file, f.src)
		if len(is) == 0 {
			t.Errorf("%s: Lint found nothing", f.file)
			continue
		}
		for i := 1; i < len(is); i++ {
			if before(is[i].Pos, is[i-1].Pos) {
				t.Errorf("%s: issues not sorted: %v", f.file, is)
			}
		}
		if _, err := dsl.Parse(f.file, f.src); err != nil {
			first := err.(dsl.Issues)[0]
			found := false
			for _, x := range is {
				found = found || x == first
			}
			if !found {
				t.Errorf("%s: Lint dropped the parser's issue %v", f.file, first)
			}
		}
	}
}

func TestLintMergesSchemaIssues(t *testing.T) {
	// The parser reports the misspelt kind; the schema's complaint about the
	// same step is dropped, not repeated.
	src := []byte("name: X\nsteps:\n  - swtich: []\n")
	is := Lint("x.yaml", src)
	if len(is) != 1 || is[0].Code != dsl.CodeUnknownKind {
		t.Fatalf("got %v, want one unknown-step-kind issue", is)
	}
}

func TestFormatText(t *testing.T) {
	src := []byte("name: X\nsteps:\n  - switch:\n      - when: discont > 5\n        steps: []\n")
	is := Lint("w.yaml", src)
	got := FormatText(is, src)
	want := "w.yaml:4:15: error: unknown name 'discont' [expr-unknown-name]\n" +
		"          - when: discont > 5\n" +
		"                  ^\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatJSON(t *testing.T) {
	if got := string(FormatJSON(nil)); got != "[]\n" {
		t.Errorf("no issues: got %q, want []", got)
	}
	src := []byte("name: X\nsteps: []\n")
	var out []map[string]any
	if err := json.Unmarshal(FormatJSON(Lint("w.yaml", src)), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("got %v", out)
	}
	want := map[string]any{"file": "w.yaml", "line": 2.0, "col": 1.0, "severity": "error", "code": "empty-steps", "message": "the workflow has no steps; add at least one"}
	for k, v := range want {
		if out[0][k] != v {
			t.Errorf("%s = %v, want %v", k, out[0][k], v)
		}
	}
}

// TestSchemaIsSelfContained: an editor with no network must be able to use
// the schema, so every $ref points inside the file (draft 2020-12's
// meta-schema by URL made yaml-language-server fail on line 1 offline).
func TestSchemaIsSelfContained(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSON()))
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				// Under properties, "$ref" names a property, not a reference.
				if (k == "$ref" || k == "$dynamicRef") && !strings.HasSuffix(path, "/properties") {
					refs++
					if s, _ := e.(string); !strings.HasPrefix(s, "#") {
						t.Errorf("%s/%s = %v: a $ref outside the schema needs the network", path, k, e)
					}
				}
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s/%d", path, i), e)
			}
		}
	}
	walk("", doc)
	if refs == 0 {
		t.Fatal("found no $ref at all; the walk is broken")
	}
}
