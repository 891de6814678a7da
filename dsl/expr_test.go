package dsl

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func parseOK(t *testing.T, src string) *Workflow {
	t.Helper()
	wf, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return wf
}

func parseIssues(t *testing.T, src string) Issues {
	t.Helper()
	wf, err := Parse("test.yaml", []byte(src))
	if err == nil {
		t.Fatalf("Parse accepted:\n%s", src)
	}
	if wf != nil {
		t.Errorf("a workflow came back with errors")
	}
	var is Issues
	if !errors.As(err, &is) {
		t.Fatalf("error %T is not Issues", err)
	}
	return is
}

// The issue's acceptance criterion: a misspelt variable in a when reports
// the identifier's exact line:col with a suggestion.
func TestMisspeltVariableInWhen(t *testing.T) {
	src := "name: X\n" +
		"steps:\n" +
		"  - set: {discount: 10}\n" +
		"  - switch:\n" +
		"      - when: input > 1 && discont > 5\n" +
		"        steps: []\n"
	is := parseIssues(t, src)
	want := "test.yaml:5:28: error: unknown name 'discont' (did you mean 'discount'?) [expr-unknown-name]"
	if len(is) != 1 || is[0].String() != want {
		t.Fatalf("got %v\nwant %s", is, want)
	}
}

// The issue's acceptance criterion: a syntax error inside an interpolated
// string points into the string.
func TestSyntaxErrorInInterpolation(t *testing.T) {
	src := "name: X\n" +
		"steps:\n" +
		"  - return: \"total ${ input.a + } and ${ input.b }\"\n"
	is := parseIssues(t, src)
	// The expression " input.a + " spans columns 22-32; expr reports the
	// missing operand at its end, column 32, inside the string.
	if len(is) != 1 || is[0].Code != CodeExprSyntax || is[0].Pos != (Pos{3, 32}) {
		t.Fatalf("got %v, want expr-syntax at 3:32", is)
	}
}

func TestExpressionPositionsInEveryScalarStyle(t *testing.T) {
	src := `name: X
steps:
  - set:
      a: "tab\there ${ inptu }"
      b: 'it''s ${ inptu }'
      c: |
        line one
        line ${ inptu } two
      d: >
        folded
        text ${ inptu }
      f: "multi
        line ${ inptu }"
      g: !!str ${ inptu }
      h: "\u00e9\x41 ${ inptu }"
      i: "cont\
        inued ${ inptu }"
      j: é ${ inptu }
      k: plain
        over ${ inptu } lines
`
	want := []Pos{{4, 24}, {5, 20}, {8, 17}, {11, 17}, {13, 17}, {14, 19}, {15, 25}, {17, 18}, {18, 15}, {20, 17}}
	is := parseIssues(t, src)
	if len(is) != len(want) {
		t.Fatalf("got %d issues, want %d:\n%v", len(is), len(want), is)
	}
	for i, x := range is {
		if x.Pos != want[i] || x.Code != CodeExprUnknown {
			t.Errorf("issue %d: %v, want unknown name at %v", i, x, want[i])
		}
	}
}

func TestScopes(t *testing.T) {
	ok := []string{
		// set by an earlier step
		"steps:\n  - set: {a: 1}\n  - return: ${ a }\n",
		// set in one branch only: some path sets it
		"steps:\n  - switch:\n      - when: input == 1\n        steps: [{set: {a: 1}}]\n  - return: ${ a }\n",
		// set by an activity result and in onTimeout
		"steps:\n  - activity: A\n    result: r\n  - wait: {event: E, timeout: 1s, onTimeout: [{set: {t: 1}}]}\n  - return: ${ [r, t] }\n",
		// error inside onError, variables set there are visible after
		"steps:\n  - activity: A\n    onError:\n      - set: {msg: '${ error.message }'}\n  - return: ${ msg }\n",
		// wait result
		"steps:\n  - wait: {event: E, result: ev}\n  - return: ${ ev }\n",
		// a set sees its own earlier assignments
		"steps:\n  - set: {a: 1, b: '${ a + 1 }'}\n  - return: ${ b }\n",
		// builtins and the environment
		"steps:\n  - if: now() > instance.createdTime && len(instance.id) > 0 && instance.name != ''\n    return: ${ upper(input) }\n  - return: ${ toJSON(input) }\n",
	}
	for _, body := range ok {
		parseOK(t, "name: X\n"+body)
	}
	bad := map[string]string{
		// the if of a step is evaluated before its result is set
		"steps:\n  - if: r == 1\n    activity: A\n    result: r\n":                                                                        "variable 'r' is not set on any path before this expression",
		"steps:\n  - set: {b: '${ a }', a: 1}\n":                                                                                          "variable 'a' is not set on any path before this expression",
		"steps:\n  - wait: {event: E, timeout: 1s, result: ev, onTimeout: [{return: '${ ev }'}]}\n":                                       "variable 'ev' is not set",
		"steps:\n  - activity: A\n    onError:\n      - activity: B\n        onError: [{return: '${ error }'}]\n  - return: ${ error }\n": "'error' is defined only inside",
	}
	for body, want := range bad {
		is := parseIssues(t, "name: X\n"+body)
		if !strings.Contains(is.Error(), want) {
			t.Errorf("%s\ngot %v\nwant %q", body, is, want)
		}
	}
}

func env() *Env {
	return &Env{
		Input:    map[string]any{"n": 2.0, "name": "Ada", "items": []any{1.0, 2.0, 3.0}},
		Vars:     map[string]any{"discount": 15.0},
		Instance: InstanceInfo{ID: "i-1", Name: "X", CreatedTime: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		Now:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestValueEval(t *testing.T) {
	wf := parseOK(t, `name: X
steps:
  - set: {discount: 1}
  - set:
      whole: ${ input.n + 1 }
      list: ${ input.items }
      object: "${ {a: input.n, b: [true, nil]} }"
      interp: "Hello ${ input.name }, ${ discount }% off, ${ input.items } ${ nil }"
      nested: {a: [1, "${ input.n * 10 }"], b: plain}
      escape: "costs $${ price } for ${ input.name }"
      onlyEscape: "costs $${ price }"
      time: ${ now() }
      dur: ${ duration("90s") }
      inst: ${ instance }
      big: ${ 1024 * 1024 * 1024 * 1024 }
      spaced: "  ${ input.n }  "
`)
	s := wf.Steps[1].(*SetStep)
	want := map[string]string{
		"whole":      `3`,
		"list":       `[1,2,3]`,
		"object":     `{"a":2,"b":[true,null]}`,
		"interp":     `"Hello Ada, 15% off, [1,2,3] null"`,
		"nested":     `{"a":[1,20],"b":"plain"}`,
		"escape":     `"costs ${ price } for Ada"`,
		"onlyEscape": `"costs ${ price }"`,
		"time":       `"2025-01-02T03:04:05Z"`,
		"dur":        `"1m30s"`,
		"inst":       `{"createdTime":"2025-01-01T00:00:00Z","id":"i-1","name":"X"}`,
		"big":        `1099511627776`,
		"spaced":     `2`,
	}
	for _, a := range s.Vars {
		got, err := a.Value.Eval(env())
		if err != nil {
			t.Errorf("%s: %v", a.Name, err)
			continue
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Errorf("%s: result does not marshal: %v", a.Name, err)
		}
		if string(b) != want[a.Name] {
			t.Errorf("%s = %s, want %s", a.Name, b, want[a.Name])
		}
	}
	if _, ok := s.Vars[0].Value.Literal(); ok {
		t.Errorf("an expression reported itself literal")
	}
	if v, ok := s.Vars[6].Value.Literal(); !ok || v != "costs ${ price }" {
		t.Errorf("Literal of an escape-only string = %v %v", v, ok)
	}
}

func TestLiteralIsACopy(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - setStatus: {a: [1, 2]}\n")
	v := wf.Steps[0].(*SetStatusStep).Value
	lit, ok := v.Literal()
	if !ok {
		t.Fatal("not literal")
	}
	lit.(map[string]any)["a"] = "changed"
	again, _ := v.Eval(env())
	if b, _ := json.Marshal(again); string(b) != `{"a":[1,2]}` {
		t.Errorf("the model was changed through Literal: %s", b)
	}
}

func TestConditionEval(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - set: {discount: 1}\n  - if: discount > 10\n    return: 1\n  - if: ${ input.n }\n    return: 2\n")
	c := wf.Steps[1].Base().If
	if got, err := c.Eval(env()); err != nil || !got {
		t.Errorf("discount > 10 = %v, %v", got, err)
	}
	if c.Source != "discount > 10" || c.Pos != (Pos{4, 9}) {
		t.Errorf("Source %q Pos %v", c.Source, c.Pos)
	}
	// A condition over a value of unknown type (input has no schema) is
	// checked at run time.
	_, err := wf.Steps[2].Base().If.Eval(env())
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Pos.Line != 6 {
		t.Errorf("non-bool at run time: %v, want an EvalError on line 6", err)
	}
}

func TestEvalErrorsAreLocated(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - return: \"x ${ input.name + input.n }\"\n")
	_, err := wf.Steps[0].(*ReturnStep).Value.Eval(env())
	var ee *EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("got %v, want *EvalError", err)
	}
	if ee.Pos != (Pos{3, 30}) {
		t.Errorf("error at %v, want 3:30 (the +)", ee.Pos)
	}
}

// A runaway expression fails with an error instead of exhausting memory.
func TestRunawayExpression(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - set:\n      a: ${ 1..1000000000 | map(# * 2) }\n      b: ${ repeat('x', 1000000000) }\n")
	for _, a := range wf.Steps[0].(*SetStep).Vars {
		if _, err := a.Value.Eval(env()); err == nil || !(strings.Contains(err.Error(), "memory budget") || strings.Contains(err.Error(), "the limit is")) {
			t.Errorf("got %v, want a memory budget or size limit error", err)
		}
	}
}

func TestNonJSONResults(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - set: {a: '${ 1 / 0 }', b: '${ now }'}\n")
	for _, a := range wf.Steps[0].(*SetStep).Vars {
		if _, err := a.Value.Eval(env()); err == nil {
			t.Errorf("%s: want an error for a non-JSON result", a.Name)
		}
	}
}

func TestBindingExpr(t *testing.T) {
	wf := parseOK(t, "name: X\nactivities:\n  A: {expr: '10 + len(input) % 3 * 5'}\n  B: {expr: '${ input * 2 }'}\nsteps:\n  - activity: A\n")
	got, err := wf.Activities["A"].Binding.Expr.Eval(&Env{Input: "user-1"})
	if err != nil || got != 10.0 {
		t.Errorf("A(user-1) = %v, %v; want 10", got, err)
	}
	got, err = wf.Activities["B"].Binding.Expr.Eval(&Env{Input: 21.0})
	if err != nil || got != 42.0 {
		t.Errorf("B(21) = %v, %v; want 42", got, err)
	}
}

// Compiled workflows are shared by the engine's goroutines.
func TestConcurrentEval(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - if: input.n > 1\n    return: \"${ input.name } ${ input.n * 2 }\"\n")
	ret := wf.Steps[0].(*ReturnStep)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if ok, err := ret.If.Eval(env()); err != nil || !ok {
					t.Errorf("if: %v %v", ok, err)
					return
				}
				if v, err := ret.Value.Eval(env()); err != nil || v != "Ada 4" {
					t.Errorf("value: %v %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSplitTemplate(t *testing.T) {
	cases := []struct {
		in    string
		exprs []string
		err   string
	}{
		{"plain", nil, ""},
		{"${ a }", []string{" a "}, ""},
		{"x ${a} y ${ b }", []string{"a", " b "}, ""},
		{"${ {a: '}'}.a }", []string{" {a: '}'}.a "}, ""},
		{"${ \"\\\"}\" }", []string{" \"\\\"}\" "}, ""},
		{"$${ a }", nil, ""},
		{"${ a", nil, CodeExprUnclosed},
		{"${ '}", nil, CodeExprUnclosed},
		{"a ${  } b", nil, CodeExprEmpty},
		{"$ {a}", nil, ""},
	}
	for _, c := range cases {
		segs, err := splitTemplate(c.in)
		if c.err != "" {
			if err == nil || err.code != c.err {
				t.Errorf("%q: err %v, want %s", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err.msg)
			continue
		}
		var got []string
		for _, s := range segs {
			if s.isExpr {
				got = append(got, s.text)
			}
		}
		if strings.Join(got, "|") != strings.Join(c.exprs, "|") {
			t.Errorf("%q: exprs %q, want %q", c.in, got, c.exprs)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"discount", "confirmed", "input", "instance", "now"}
	for in, want := range map[string]string{
		"discont":  " (did you mean 'discount'?)",
		"dicsount": " (did you mean 'discount'?)",
		"inptu":    " (did you mean 'input'?)",
		"cnfirmed": " (did you mean 'confirmed'?)",
		"xyz":      "",
		"nwo":      " (did you mean 'now'?)",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkEval measures the evaluation of typical expressions, so that
// the bounds on hostile ones can be seen not to slow down normal ones.
func BenchmarkEval(b *testing.B) {
	wf, err := Parse("bench.yaml", []byte(`name: B
steps:
  - set: {discount: 1}
  - if: discount > 10 && input.city == "Paris"
    set:
      greeting: "Hello ${ input.name }, ${ discount }% off in ${ input.city }"
      label: ${ "order " + input.name + "/" + instance.id }
      doubled: "${ map(input.items, # * 2) }"
      upper: ${ upper(input.name) }
`))
	if err != nil {
		b.Fatal(err)
	}
	st := wf.Steps[1].(*SetStep)
	e := &Env{
		Input:    map[string]any{"city": "Paris", "name": "Ada", "items": []any{1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0}},
		Vars:     map[string]any{"discount": 15.0},
		Instance: InstanceInfo{ID: "i-1", Name: "B"},
	}
	b.Run("condition", func(b *testing.B) {
		for b.Loop() {
			if ok, err := st.If.Eval(e); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	for _, a := range st.Vars {
		b.Run(a.Name, func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Value.Eval(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
