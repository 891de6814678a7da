package dsl

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestGeneratedIDsAndBlocks(t *testing.T) {
	wf := parseOK(t, `name: X
steps:
  - set: {a: 1}
  - switch:
      - when: a == 1
        steps:
          - set: {b: 1}
          - activity: A
            onError:
              - return: failed
      - default:
          - wait: {event: E, timeout: 1s, onTimeout: [{return: late}]}
  - id: check
    switch:
      - when: a == 2
        steps:
          - return: two
  - return: ${ a }
`)
	ids := map[StepID]string{
		"steps[0]":                         "*dsl.SetStep",
		"steps[1]":                         "*dsl.SwitchStep",
		"steps[1].case[0][0]":              "*dsl.SetStep",
		"steps[1].case[0][1]":              "*dsl.ActivityStep",
		"steps[1].case[0][1].onError[0]":   "*dsl.ReturnStep",
		"steps[1].default[0]":              "*dsl.WaitStep",
		"steps[1].default[0].onTimeout[0]": "*dsl.ReturnStep",
		"check":                            "*dsl.SwitchStep",
		"check.case[0][0]":                 "*dsl.ReturnStep",
		"steps[3]":                         "*dsl.ReturnStep",
	}
	if len(wf.ByID) != len(ids) {
		t.Errorf("ByID has %d steps, want %d: %v", len(wf.ByID), len(ids), wf.ByID)
	}
	for id, typ := range ids {
		if got := fmt.Sprintf("%T", wf.ByID[id]); got != typ {
			t.Errorf("ByID[%q] is %s, want %s", id, got, typ)
		}
	}
	blocks := []BlockID{"", "steps[1]#case0", "steps[1].case[0][1]#onError", "steps[1]#default", "steps[1].default[0]#onTimeout", "check#case0"}
	if len(wf.Blocks) != len(blocks) {
		t.Errorf("Blocks: %v", wf.Blocks)
	}
	for _, b := range blocks {
		if _, ok := wf.Blocks[b]; !ok {
			t.Errorf("block %q missing", b)
		}
	}
	checkModel(t, wf)
	w := wf.ByID["steps[1].default[0]"].(*WaitStep)
	if w.Event != "E" || !w.HasOnTimeout || w.OnTimeoutBlock != "steps[1].default[0]#onTimeout" {
		t.Errorf("wait: %+v", w)
	}
	if d, _ := w.Timeout.Literal(); d != "1s" {
		t.Errorf("timeout literal %v", d)
	}
}

func TestParseIsDeterministic(t *testing.T) {
	src := []byte("name: X\nsteps:\n  - set: {b: 2, a: 1}\n  - return: '${ [a, b] }'\n")
	a := parseOK(t, string(src))
	b := parseOK(t, string(src))
	sum := sha256.Sum256(src)
	if a.Hash != b.Hash || a.Hash != hex.EncodeToString(sum[:]) {
		t.Errorf("hash %s vs %s", a.Hash, b.Hash)
	}
	vars := a.Steps[0].(*SetStep).Vars
	if vars[0].Name != "b" || vars[1].Name != "a" || vars[0].Pos != (Pos{3, 11}) {
		t.Errorf("assignments not in source order: %+v", vars)
	}
}

func TestWorkflowFields(t *testing.T) {
	wf := parseOK(t, `name: Shop.Order-v2_1
description: Sells things.
input: {type: object, required: [id]}
status: {type: object}
activities:
  Pay: {timeout: 30s, go: true}
  Ship: {http: {url: "https://example.com/ship", timeout: 10s}}
  Ask: {worker: true}
  Plain:
steps:
  - activity: Pay
`)
	if wf.Name != "Shop.Order-v2_1" || wf.Description != "Sells things." {
		t.Errorf("name/description: %q %q", wf.Name, wf.Description)
	}
	if err := wf.Input.Validate(map[string]any{"id": "x"}); err != nil {
		t.Errorf("valid input rejected: %v", err)
	}
	err := wf.Input.Validate(map[string]any{})
	if err == nil || !strings.Contains(err.Error(), "missing property 'id'") {
		t.Errorf("invalid input: %v", err)
	}
	if wf.Input.Pos != (Pos{3, 1}) {
		t.Errorf("input schema pos %v", wf.Input.Pos)
	}
	if a := wf.Activities["Pay"]; a.Timeout != 30*time.Second || a.Binding.Kind != BindGo {
		t.Errorf("Pay: %+v", a)
	}
	if a := wf.Activities["Ship"]; a.Binding.Kind != BindHTTP || a.Binding.Method != "POST" || a.Binding.Timeout != 10*time.Second {
		t.Errorf("Ship: %+v", a.Binding)
	}
	if a := wf.Activities["Ask"]; a.Binding.Kind != BindWorker {
		t.Errorf("Ask: %+v", a.Binding)
	}
	if a := wf.Activities["Plain"]; a == nil || a.Binding != nil {
		t.Errorf("Plain: %+v", a)
	}
}

// A schema may not reach outside itself: no files, no network.
func TestSchemaRefsStayInside(t *testing.T) {
	is := parseIssues(t, "name: X\ninput: {$ref: 'file:///etc/passwd'}\nsteps:\n  - return: 1\n")
	if is[0].Code != CodeJSONSchema || !strings.Contains(is[0].Message, "not allowed") {
		t.Errorf("got %v", is)
	}
	parseOK(t, "name: X\ninput: {$defs: {id: {type: string}}, $ref: '#/$defs/id'}\nsteps:\n  - return: 1\n")
}

func TestLimits(t *testing.T) {
	big := "name: X\nsteps:\n  - return: " + strings.Repeat("x", MaxSourceBytes) + "\n"
	if is := parseIssues(t, big); is[0].Code != CodeSourceTooLarge {
		t.Errorf("large: %v", is)
	}
	// The classic billion laughs: 9^9 strings once expanded.
	var b strings.Builder
	b.WriteString("name: X\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("steps:\n  - setStatus: *a9\n")
	if is := parseIssues(t, b.String()); is[0].Code != CodeYAMLAliases {
		t.Errorf("bomb: %v", is)
	}
	deep := "name: X\nsteps:\n  - return: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n"
	if is := parseIssues(t, deep); is[0].Code != CodeYAMLTooDeep {
		t.Errorf("deep: %v", is)
	}
	var many strings.Builder
	many.WriteString("name: X\nsteps:\n  - setStatus:\n")
	for i := 0; i < maxIssues+50; i++ {
		fmt.Fprintf(&many, "      - ${ nope%d }\n", i)
	}
	is := parseIssues(t, many.String())
	if len(is) != maxIssues+1 || is[len(is)-1].Code != CodeTooMany {
		t.Errorf("many errors: %d issues, last %v", len(is), is[len(is)-1])
	}
	var steps strings.Builder
	steps.WriteString("name: X\nsteps:\n")
	for i := 0; i <= MaxSteps; i++ {
		steps.WriteString("  - set: {a: 1}\n")
	}
	if is := parseIssues(t, steps.String()); is[0].Code != CodeTooMany {
		t.Errorf("many steps: %v", is)
	}
}

func TestEmptyAndOddDocuments(t *testing.T) {
	for src, code := range map[string]string{
		"":                                      CodeYAMLDocuments,
		"# only a comment":                      CodeYAMLDocuments,
		"- a\n- b\n":                            CodeTypeMismatch,
		"just text":                             CodeTypeMismatch,
		"name: X\nsteps:\n":                     CodeEmptySteps,
		"name: X\nsteps: 5\n":                   CodeTypeMismatch,
		"{name: X, steps: [{return: 1}], 1: 2}": CodeUnknownField,
		"name: X\nsteps:\n  - ? [a]\n    : 1\n": CodeYAMLKey,
	} {
		is := parseIssues(t, src)
		if is[0].Code != code {
			t.Errorf("%q: got %v, want %s", src, is, code)
		}
	}
}
