package dsl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary sources to the loader. Parse must not panic,
// must answer either a workflow or located issues, and must stay within
// the limits it promises (source size, alias expansion, nesting, counts),
// which is what keeps each run fast and small.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "../workflows/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err == nil && len(src) < 4096 {
				f.Add(src)
			}
		}
	}
	f.Add([]byte("name: X\nsteps:\n  - return: \"${ 'a' + \"}\" }\"\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("name: X\nsteps:\n  - set: {a: |\n      ${ a\n      }\n    }\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		wf, err := Parse("fuzz.yaml", src)
		if err != nil {
			var is Issues
			if !errors.As(err, &is) || len(is) == 0 {
				t.Fatalf("error is not a non-empty Issues: %v", err)
			}
			if wf != nil && is.HasErrors() {
				t.Fatalf("a workflow came back with errors")
			}
			for _, x := range is {
				if x.Pos.Line < 1 || x.Pos.Col < 1 || x.Code == "" || x.Message == "" {
					t.Fatalf("malformed issue %#v", x)
				}
			}
			if len(is) > maxIssues+2 {
				t.Fatalf("%d issues, more than the limit", len(is))
			}
			return
		}
		if wf == nil || wf.Name == "" || len(wf.Steps) == 0 {
			t.Fatalf("no error but no usable workflow")
		}
		// Everything the parser accepted must evaluate without panicking.
		env := &Env{Input: map[string]any{"a": 1.0}, Vars: map[string]any{}}
		for _, s := range wf.ByID {
			if c := s.Base().If; c != nil {
				_, _ = c.Eval(env)
			}
			switch s := s.(type) {
			case *SetStatusStep:
				_, _ = s.Value.Eval(env)
			case *ReturnStep:
				_, _ = s.Value.Eval(env)
			case *SetStep:
				for _, a := range s.Vars {
					_, _ = a.Value.Eval(env)
				}
			}
		}
	})
}
