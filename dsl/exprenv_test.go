package dsl

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// probeFlow sets a, b and s, and maybe on one path only, then evaluates
// one expression per variable of its probe step.
const probeFlow = `name: Probe
activities:
  Calc:
    expr: input.n * 2 + len(upper(input.s))
steps:
  - set: {a: 2, b: 3, s: hello}
  - switch:
      - when: a > 5
        steps:
          - set: {maybe: 1}
  - activity: Calc
    input: {n: 1, s: x}
  - id: probe
    if: a < b and instance.name == 'Probe'
    set:
      vars: ${ a + b }
      absent: ${ maybe }
      absentIsNil: ${ maybe == nil }
      absentPooled: ${ [maybe, input.n] }
      ofInput: ${ input }
      ofInstance: ${ instance }
      created: ${ instance.createdTime }
      ofNow: ${ string(now()) }
      budgeted: ${ upper(s) + string(input.n) }
      loop: '${ map([1, 2, 3], # * b) }'
      withLet: ${ let x = a; x * b }
      whole: ${ $env.a + $env.input.n }
      text: at ${ now() } for ${ instance.id }, ${ s } ${ a }
      constant: ${ 1 + 2 }
      list: ['${ a }', '${ input.n }']
`

// TestEnvForAgreesWithExprEnv: an expression sees the same through the
// environment built from its names as through the whole one.
func TestEnvForAgreesWithExprEnv(t *testing.T) {
	wf, err := Parse("probe.yaml", []byte(probeFlow))
	if err != nil {
		t.Fatal(err)
	}
	probe := wf.ByID["probe"].(*SetStep)
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	env := &Env{
		Input:    map[string]any{"n": 4.0},
		Vars:     map[string]any{"a": 2.0, "b": 3.0, "s": "hello"},
		Instance: InstanceInfo{ID: "i-1", Name: "Probe", CreatedTime: created},
		Now:      created.Add(time.Minute),
	}
	wholeEval := func(v *Value) (any, error) {
		defer forceWhole(v)()
		return v.Eval(env)
	}
	for _, a := range probe.Vars {
		got, err := a.Value.Eval(env)
		want, werr := wholeEval(a.Value)
		if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, %v; the whole environment gives %#v, %v", a.Name, got, err, want, werr)
		}
	}
	if ok, err := probe.If.Eval(env); !ok || err != nil {
		t.Errorf("if: %v, %v", ok, err)
	}
	bind := wf.Activities["Calc"].Binding.Expr
	got, err := bind.Eval(&Env{Input: map[string]any{"n": 1.0, "s": "xy"}, Vars: env.Vars})
	if err != nil || got != 4.0 {
		t.Errorf("binding: %v, %v; want 4", got, err)
	}

	// The cheap paths are taken where they can be.
	for name, want := range map[string]envUse{
		"withLet": {names: []string{"a", "b"}, varsOnly: true},
		"vars":    {names: []string{budgetEnv, "a", "b"}},
		"absent":  {names: []string{"maybe"}, varsOnly: true},
		"ofInput": {names: []string{"input"}},
		"whole":   {whole: true},
	} {
		for _, a := range probe.Vars {
			if a.Name == name && !reflect.DeepEqual(a.Value.expr.use, want) {
				t.Errorf("%s: use %+v, want %+v", name, a.Value.expr.use, want)
			}
		}
	}
}

// forceWhole makes every expression of v take the whole environment, and
// returns what undoes it.
func forceWhole(v *Value) func() {
	var undo []func()
	var walk func(v *Value)
	set := func(c *compiled) {
		if c != nil {
			old := c.use
			c.use = envUse{whole: true}
			undo = append(undo, func() { c.use = old })
		}
	}
	walk = func(v *Value) {
		set(v.expr)
		for _, p := range v.parts {
			set(p.expr)
		}
		for _, it := range v.items {
			walk(it)
		}
		for _, f := range v.fields {
			walk(f)
		}
	}
	walk(v)
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

// TestEnvPoolKeepsEvaluationsApart: evaluations on many goroutines, which
// share pooled environments one after another, each see only their own
// values, whether they share an Env or not.
func TestEnvPoolKeepsEvaluationsApart(t *testing.T) {
	wf, err := Parse("probe.yaml", []byte(probeFlow))
	if err != nil {
		t.Fatal(err)
	}
	var budgeted, absent *Value
	for _, a := range wf.ByID["probe"].(*SetStep).Vars {
		switch a.Name {
		case "budgeted":
			budgeted = a.Value
		case "absentPooled":
			absent = a.Value
		}
	}
	shared := &Env{Input: map[string]any{"n": 0.0}, Vars: map[string]any{"s": "shared"}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			own := &Env{Input: map[string]any{"n": float64(g)}, Vars: map[string]any{"s": fmt.Sprint("g", g)}}
			if g%2 == 0 {
				// maybe is set only where g is even.
				own.Vars["maybe"] = float64(g)
			}
			for range 2000 {
				if got, err := budgeted.Eval(own); err != nil || got != fmt.Sprintf("G%d%d", g, g) {
					errs <- fmt.Errorf("goroutine %d: %v, %v", g, got, err)
					return
				}
				if got, err := budgeted.Eval(shared); err != nil || got != "SHARED0" {
					errs <- fmt.Errorf("goroutine %d, shared env: %v, %v", g, got, err)
					return
				}
				want := []any{nil, float64(g)}
				if g%2 == 0 {
					want[0] = float64(g)
				}
				if got, err := absent.Eval(own); err != nil || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("goroutine %d: maybe is %v, %v; want %v", g, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
