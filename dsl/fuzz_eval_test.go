package dsl

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// evalAllocLimit is the most one evaluation may allocate. MaxExprMemory
// and MaxExprAlloc promise that a runaway expression fails its step
// instead of eating the engine's memory; 256 MiB is far above what any
// expression within those budgets allocates (32 MiB of text and lists, a
// million elements, and the garbage of at most MaxExprSteps steps) and far
// below what would hurt an engine.
const evalAllocLimit = 256 << 20

// evalTimeLimit bounds one evaluation: MaxExprSteps steps take about a
// second on a busy machine; ten leaves room for the race detector.
const evalTimeLimit = 10 * time.Second

// FuzzEval compiles an arbitrary expression as a workflow would hold it
// (as a value `${ expr }` or as a condition) and evaluates it on an
// arbitrary JSON input. Whatever the expression, evaluation must not panic,
// must end, must stay within evalAllocLimit, must be deterministic (now()
// is fixed), must answer a JSON-compatible value or an *EvalError that
// names a position in the source, and a condition must answer a boolean.
// Where it stays within the limits of budget.go, it must answer what expr
// answers without them (agree).
//
// Run it with: go test ./dsl -run '^$' -fuzz FuzzEval -fuzztime 5m -parallel 1
func FuzzEval(f *testing.F) {
	for _, s := range []struct {
		expr, input string
		cond        bool
	}{
		{`input.a + 1`, `{"a":1}`, false},
		{`len(input)`, `[1,2,3]`, false},
		{`map(1..10, # * 2)`, `null`, false},
		{`filter(input, # > 1)`, `[1,2,3]`, false},
		{`now()`, `null`, false},
		{`instance.id + "/" + instance.name`, `null`, false},
		{`toJSON(input)`, `{"a":[1,{"b":null}]}`, false},
		{`fromJSON("{\"a\": [1, 2]}")`, `null`, false},
		{`input?.b ?? "default"`, `{}`, false},
		{`let x = 1; x + input`, `2`, false},
		{`{"a": [1, 2], "b": input}`, `"s"`, false},
		{`"abc" matches "b+"`, `null`, true},
		{`input > 3 && input < 10`, `5`, true},
		{`upper(input) + lower(input)`, `"MiXeD"`, false},
		{`split("a,b,c", ",")`, `null`, false},
		{`sortBy([3, 1, 2], #)`, `null`, false},
		{`reduce(1..100, #acc + #, 0)`, `null`, false},
		{`date("2026-01-02T15:04:05Z").Year()`, `null`, false},
		{`duration("1h30m")`, `null`, false},
		{`input[1:3]`, `[1,2,3,4]`, false},
		{`1..1000000`, `null`, false},
		{`len(1..2000000000)`, `null`, false},
		{`int("12") + float("1.5")`, `null`, false},
		{`repeat("ab", 3)`, `null`, false},
		{`input.a.b.c`, `{"a":null}`, false},
		{`1 / 0`, `null`, false},
		{`input ** 1000`, `10`, false},
		{`any(input, {.x == 1})`, `[{"x":1}]`, true},
		{`"${"`, `null`, false},
		// Each of these once allocated or worked without bound.
		{`len(repeat(repeat("x", 999999), 500))`, `null`, false},
		{`let s = repeat(input, 99999); let a = s + s; let b = a + a; a + b`, `"xyz"`, false},
		{`join(map(1..1000, input), input)`, `"abc"`, false},
		{`replace(repeat(input, 1000), "", input)`, `"ab"`, false},
		{`toJSON(reduce(1..60, [#acc, #acc], 0))`, `null`, false},
		{`string(reduce(1..30, [#acc, #acc], 0))`, `null`, false},
		{`reduce(1..40, [#acc, #acc], 0)`, `null`, false},
		// Small, so that the mutations of a loop seed are mostly quick:
		// every input that runs out of steps takes about a second.
		{`let r = 1..30; count(r, count(r, count(r, true) == 30) == 30)`, `null`, false},
		{`uniq(1..input)`, `300`, false},
		{`concat(input, input, input)`, `[1,2]`, false},
		{`flatten(reduce(1..100, [#, #acc], 0))`, `null`, false},
		{`input matches "^[a-z]+@[a-z]+$"`, `"a@b"`, true},
		{`input contains "b" && input startsWith "a" && input endsWith "c"`, `"abc"`, true},
		{`input[input.k] ?? input.m[input.k]`, `{"k":"m","m":{"m":1}}`, false},
		{`keys(input)`, `{"b":1,"a":2}`, false},
		{`sortBy(input, #) == sort(input)`, `[3,1,2]`, true},
		{`groupBy(input, # > 1)`, `[3,1,2]`, false},
		{`now().Format("2006-01-02 " + input)`, `"15:04"`, false},
	} {
		f.Add(s.expr, []byte(s.input), s.cond)
	}
	fixed := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string, input []byte, cond bool) {
		if len(expr) > 4096 || len(input) > 1<<16 {
			return
		}
		var src string
		if cond {
			src = "name: F\nsteps:\n  - if: " + strconv.Quote(expr) + "\n    return: 1\n"
		} else {
			src = "name: F\nsteps:\n  - return: " + strconv.Quote("${ "+expr+" }") + "\n"
		}
		wf, err := Parse("fuzz.yaml", []byte(src))
		if err != nil {
			var is Issues
			if !errors.As(err, &is) || len(is) == 0 {
				t.Fatalf("Parse: %v is not a non-empty Issues", err)
			}
			return
		}
		if len(wf.Steps) != 1 {
			t.Fatalf("%d steps", len(wf.Steps))
		}
		var in any
		if json.Unmarshal(input, &in) != nil {
			in = nil
		}
		eval := func() (any, error) {
			env := &Env{Input: in, Vars: map[string]any{}, Instance: InstanceInfo{ID: "i-1", Name: "F", CreatedTime: fixed}, Now: fixed}
			if cond {
				c := wf.Steps[0].Base().If
				if c == nil {
					t.Fatalf("no condition parsed from %q", expr)
				}
				return c.Eval(env)
			}
			r, ok := wf.Steps[0].(*ReturnStep)
			if !ok {
				t.Fatalf("step is %T", wf.Steps[0])
			}
			return r.Value.Eval(env)
		}
		out1, err1, alloc := bounded(t, expr, eval)
		if alloc > evalAllocLimit {
			t.Fatalf("evaluating %q allocated %d MiB", expr, alloc>>20)
		}
		out2, err2, _ := bounded(t, expr, eval)
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("%q: not deterministic: %v then %v", expr, err1, err2)
		}
		if err1 != nil {
			var ee *EvalError
			if !errors.As(err1, &ee) || ee.Pos.Line < 1 || ee.Pos.Col < 1 {
				t.Fatalf("%q: error %v (%T) does not name a source position", expr, err1, err1)
			}
		} else if cond {
			if _, ok := out1.(bool); !ok {
				t.Fatalf("%q: condition answered %T", expr, out1)
			}
		} else {
			checkJSON(t, expr, out1, out2)
		}
		agreeSafely(t, expr, wf, cond, in, fixed, out1, err1)
	})
}

// agreeSafely compares the evaluation with expr's (agree), itself within
// evalTimeLimit and without panicking.
func agreeSafely(t *testing.T, expr string, wf *Workflow, cond bool, in any, fixed time.Time, out any, err error) {
	var c *compiled
	if cond {
		c = wf.Steps[0].Base().If.c
	} else if v := wf.Steps[0].(*ReturnStep).Value; v.kind == valExpr {
		c = v.expr
	} else {
		return // a } in expr made it text around expressions
	}
	env := &Env{Input: in, Vars: map[string]any{}, Instance: InstanceInfo{ID: "i-1", Name: "F", CreatedTime: fixed}, Now: fixed}
	msg, _, _ := bounded(t, expr, func() (any, error) {
		return disagreement(c, env, out, err), nil
	})
	if msg != "" {
		t.Fatalf("%q: %s", expr, msg)
	}
}

// checkJSON checks that a value result is JSON, deterministic and reads
// back.
func checkJSON(t *testing.T, expr string, out1, out2 any) {
	b1, err := json.Marshal(out1)
	if err != nil {
		t.Fatalf("%q: result %#v is not JSON: %v", expr, out1, err)
	}
	b2, _ := json.Marshal(out2)
	if string(b1) != string(b2) {
		t.Fatalf("%q: not deterministic: %s then %s", expr, b1, b2)
	}
	var back any
	if err := json.Unmarshal(b1, &back); err != nil {
		t.Fatalf("%q: result %s does not read back: %v", expr, b1, err)
	}
}

// bounded runs eval, failing the test on a panic or when it does not end
// within evalTimeLimit, and reports the bytes it allocated.
func bounded(t *testing.T, expr string, eval func() (any, error)) (any, error, uint64) {
	type result struct {
		v     any
		err   error
		alloc uint64
		panic string
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panic = fmt.Sprint(p)
			}
			done <- r
		}()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r.v, r.err = eval()
		runtime.ReadMemStats(&after)
		r.alloc = after.TotalAlloc - before.TotalAlloc
	}()
	select {
	case r := <-done:
		if r.panic != "" {
			t.Fatalf("evaluating %q panicked: %s", expr, r.panic)
		}
		return r.v, r.err, r.alloc
	case <-time.After(evalTimeLimit):
		t.Fatalf("evaluating %q did not end within %s", expr, evalTimeLimit)
		return nil, nil, 0
	}
}
