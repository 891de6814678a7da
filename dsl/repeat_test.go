package dsl

import (
	"strings"
	"testing"
)

func TestRepeatIsBounded(t *testing.T) {
	wf, err := Parse("r.yaml", []byte(`
name: R
steps:
  - set: {a: "${ repeat(repeat(\"x\", 999999), 1000000) }"}
  - set: {b: "${ repeat(\"ab\", 3) }"}
`))
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Vars: map[string]any{}}
	_, err = wf.Steps[0].(*SetStep).Vars[0].Value.Eval(env)
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("huge repeat: %v", err)
	}
	v, err := wf.Steps[1].(*SetStep).Vars[0].Value.Eval(env)
	if err != nil || v != "ababab" {
		t.Fatalf("small repeat: %v %v", v, err)
	}
}
