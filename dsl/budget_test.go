package dsl

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm"
)

// valueOf parses expr as the value of a return step.
func valueOf(t testing.TB, expr string) *Value {
	t.Helper()
	src := "name: B\nsteps:\n  - return: " + strconv.Quote("${ "+expr+" }") + "\n"
	wf, err := Parse("b.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return wf.Steps[0].(*ReturnStep).Value
}

func evalExpr(t testing.TB, expr string, input any) (any, error) {
	t.Helper()
	return valueOf(t, expr).Eval(&Env{Input: input, Vars: map[string]any{}})
}

// bombAllocLimit is the most a bomb may allocate before it fails, as
// FuzzEval's evalAllocLimit: the string and list budget, the VM's element
// budget (at up to 40 bytes an element) and the garbage of up to
// MaxExprSteps steps (the VM boxes the numbers it computes, 8 to 16 bytes
// a step, more with -race).
const bombAllocLimit = evalAllocLimit

// The bombs each stand for a way an expression could allocate or work
// without bound before this package charged it; each must fail with the
// error of the limit it hits. Without the bound, each fails some other
// way: no error, gigabytes allocated (over bombAllocLimit, or the test
// dies), or minutes to years of work (the test times out).
var bombs = []struct{ name, expr, want string }{
	// Text.
	{"repeat of repeat", `len(repeat(repeat("x", 999999), 500))`, "repeat would build a string of 499999500 bytes"},
	{"+ doubling", `len(let s = repeat("x", 999999); let a = s + s; let b = a + a; let c = b + b; let d = c + c; let e = d + d; let f = e + e; let g = f + f; g + g)`, "+ would build a string of 1999998 bytes"},
	{"+ accumulating in reduce", `len(reduce(1..100000, #acc + "xxxxxxxxxx", ""))`, "memory limit exceeded"},
	{"+ written by sum of a literal list", `let s = repeat("x", 999999); len(sum([s, s, s, s]))`, "+ would build"},
	{"join of many", `let s = repeat("x", 999); len(join(map(1..400000, s), ""))`, "join would build a string of 399600000 bytes"},
	{"join with a big glue", `let s = repeat("x", 999999); len(join(map(1..1000, "a"), s))`, "join would build a string of 999000001 bytes"},
	{"replace with a big replacement", `len(replace(repeat("x", 999999), "x", repeat("y", 999999)))`, "replace would build a string of 999998000001 bytes"},
	{"replace of the empty string", `len(replace(repeat("x", 500000), "", "yy"))`, "replace would build a string of 1500002 bytes"},
	{"upper repeated", `let s = repeat("x", 999999); count(1..1000, len(upper(s)) > 0)`, "memory limit exceeded"},
	{"upper of non-ASCII repeated", `let s = repeat("é", 400000); count(1..1000, len(upper(s)) > 0)`, "work limit exceeded"},
	{"toBase64", `len(toBase64(repeat("x", 999999)))`, "toBase64 would build a string of 1333332 bytes"},
	{"a time's Format", `len(now().Format(repeat("2006", 200000)))`, "Format would build a string of 2400064 bytes"},
	{"toJSON of many references", `let s = repeat("x", 999999); len(toJSON(map(1..1000, s)))`, "toJSON would build a string of more than 1048576 bytes"},
	{"toJSON indenting a deep list", `len(toJSON(reduce(1..9000, [#acc], 0)))`, "toJSON would build a string of more than 1048576 bytes"},
	{"string of many references", `let s = repeat("x", 999999); len(string(map(1..999, s)))`, "string would build a string of more than 1048576 bytes"},
	{"fromJSON repeated", `let s = toJSON(1..40000); count(1..1000, fromJSON(s) != nil)`, "memory limit exceeded"},
	// Lists.
	{"split repeated", `let s = repeat("x", 999999); len(map(1..100, split(s, "")))`, "memory limit exceeded"},
	{"concat growing tenfold", `let a = 1..999; let b = concat(a,a,a,a,a,a,a,a,a,a); let c = concat(b,b,b,b,b,b,b,b,b,b); let d = concat(c,c,c,c,c,c,c,c,c,c); len(concat(d,d,d))`, "memory limit exceeded"},
	{"uniq, quadratic", `len(uniq(1..100000))`, "work limit exceeded"},
	{"sort", `len(sort(map(1..400000, -#)))`, "work limit exceeded"},
	{"groupBy repeated", `let r = 1..300000; len(map(1..3, groupBy(r, #)))`, "memory limit exceeded"},
	// The VM allocates a scope for each loop it starts, and keeps them all
	// until the evaluation ends.
	{"loops started in loops", `let e = [0]; let r = 1..1000; count(r, count(r, any(e, # == 0)) == 1000)`, "memory limit exceeded"},
	// A list holding itself 2^60 times in 120 elements.
	{"result holding itself", `reduce(1..60, [#acc, #acc], 0)`, "the value has more than 1000000 elements"},
	{"result of references to a big string", `let s = repeat("x", 999999); map(1..100, s)`, "the value holds more than 32 MiB of text"},
	{"toJSON of a list holding itself", `len(toJSON(reduce(1..60, [#acc, #acc], 0)))`, "toJSON would build a string of more than"},
	{"string of a list holding itself", `len(string(reduce(1..60, [#acc, #acc], 0)))`, "string would build a string of more than"},
	{"flatten of a list holding itself", `len(flatten(reduce(1..60, [#acc, #acc], 0)))`, "memory limit exceeded"},
	{"max of a list holding itself", `max(reduce(1..60, [#acc, #acc], 0))`, "work limit exceeded"},
	{"== of lists holding themselves", `let a = reduce(1..60, [#acc, #acc], 0); let b = reduce(1..60, [#acc, #acc], 0); a == b`, "work limit exceeded"},
	{"a list holding itself as a key", `input[reduce(1..60, [#acc, #acc], 0)]`, "cannot use a list as a key or an index"},
	{"a list holding itself as a bad pair", `fromPairs([{a: reduce(1..60, [#acc, #acc], 0)}])`, "invalid pair at index 0: an object"},
	// Work.
	{"nested reduce over one range", `let r = 1..1000; reduce(r, reduce(r, reduce(r, #acc + 1, 0), 0), 0)`, "work limit exceeded"},
	{"nested count over one range", `let r = 1..1000; count(r, count(r, count(r, true) == 1000) == 1000)`, "work limit exceeded"},
	{"nested sum without predicate", `let r = 1..1000; sum(r, sum(r, sum(r)))`, "work limit exceeded"},
	{"matches over long text", `let s = repeat("ab", 499999); count(1..100000, s matches "[a-z]{50}q")`, "work limit exceeded"},
	{"matches a computed pattern", `let s = repeat("ab", 499999); let p = "[a-z]{50}q"; count(1..100000, s matches p)`, "work limit exceeded"},
	{"contains with a long needle", `let s = repeat("a", 999999); let n = repeat("a", 500000) + "b"; count(1..1000, s contains n)`, "work limit exceeded"},
	{"indexOf with a long needle", `let s = repeat("a", 999999); let n = repeat("a", 500000) + "b"; count(1..1000, indexOf(s, n) > 0)`, "work limit exceeded"},
	{"== of long strings", `let s = repeat("x", 999999); let t = repeat("x", 999999); let r = 1..1000; count(r, count(r, s == t) > 0)`, "work limit exceeded"},
	{"< of long strings", `let s = repeat("x", 999999); let t = repeat("x", 999999); let r = 1..1000; count(r, count(r, s < t) > 0)`, "work limit exceeded"},
	{"hashing a long key", `let k = repeat("x", 999999); let m = {a: 1}; let r = 1..1000; count(r, count(r, m[k] == nil) > 0)`, "work limit exceeded"},
	{"a long text in a constant set", `let s = repeat("x", 999999); count(1..100000, s in ["a", "b"])`, "work limit exceeded"},
	{"in over a long list", `let r = 1..100000; count(r, -1 in r)`, "work limit exceeded"},
	{"sortBy long keys", `let r = 1..1000; len(sortBy(r, repeat("x", 100000)))`, "work limit exceeded"},
	{"groupBy long keys", `let s = repeat("x", 999999); len(groupBy(1..100000, s))`, "work limit exceeded"},
	{"trim with a long non-ASCII cutset", `let s = repeat("é", 100000); let c = repeat("é", 400000) + "x"; count(1..1000, len(trim(s, c)) == 0)`, "work limit exceeded"},
	{"loading time zones", `count(1..100000, timezone("UTC") != nil)`, "work limit exceeded"},
}

func TestBombsFail(t *testing.T) {
	for _, b := range bombs {
		t.Run(b.name, func(t *testing.T) {
			v := valueOf(t, b.expr)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := v.Eval(&Env{Vars: map[string]any{}})
			runtime.ReadMemStats(&after)
			var ee *EvalError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("got %v, want an EvalError with %q", err, b.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bombAllocLimit {
				t.Errorf("allocated %d MiB before failing", alloc>>20)
			}
		})
	}
}

// A budget error points at the operation that ran out.
func TestBudgetErrorIsLocated(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - return: \"${ input + repeat('x', 1048576) }\"\n")
	_, err := wf.Steps[0].(*ReturnStep).Value.Eval(&Env{Input: "x", Vars: map[string]any{}})
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Pos != (Pos{3, 23}) || !strings.Contains(err.Error(), "+ would build a string of 1048577 bytes; the limit is 1048576") {
		t.Fatalf("got %v, want the + at 3:23 over the string limit", err)
	}
}

// A failed expression's message stays readable: expr's quote the values.
func TestLongErrorIsShortened(t *testing.T) {
	_, err := evalExpr(t, `int(repeat("1", 999999) + "x")`, nil)
	var ee *EvalError
	if !errors.As(err, &ee) || len(ee.Err.Error()) > maxErrorText+100 || !strings.Contains(ee.Err.Error(), "bytes more)") {
		t.Fatalf("got a message of %d bytes: %.200v", len(err.Error()), err)
	}
}

// The bounded functions cannot be named by an expression.
func TestBoundedNamesAreHidden(t *testing.T) {
	for _, src := range []string{"${ cairn add(1, 2) }", "${ cairn b }"} {
		if _, err := Parse("h.yaml", []byte("name: H\nsteps:\n  - return: "+strconv.Quote(src)+"\n")); err == nil {
			t.Errorf("%s compiled", src)
		}
	}
}

// referenceEval evaluates c as expr would without boundAST, for
// comparison with the bounded program; but with cairn's builtins
// (cairnBuiltins: its repeat, and keys, values and toPairs in the order of
// the keys, TestMapListsAreOrdered), charged as the bounded program does
// so that the reference cannot run away either.
func referenceEval(c *compiled, env *Env, binding bool) (any, error) {
	// cairn's % (numbers.go) is part of the language, not a bound.
	opts := []expr.Option{expr.Env(c.sc.types()), expr.MaxNodes(MaxExprNodes), expr.DisableBuiltin("now"), expr.Patch(modPatcher{})}
	for name := range cairnBuiltins {
		f, types := boundedFuncs[name], orig(name).Types
		if name == "repeat" {
			types = []reflect.Type{reflect.TypeOf(func(string, int) string { return "" })}
		}
		opts = append(opts, func(c *conf.Config) {
			c.Functions[name] = &builtin.Function{Name: name, Types: types, Validate: orig(name).Validate,
				Func: func(p ...any) (any, error) { return f(newBudget(), p) }}
		})
	}
	if c.asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(c.src, opts...)
	if err != nil {
		return nil, err
	}
	machine := vm.VM{MemoryBudget: MaxExprMemory}
	return machine.Run(prog, env.exprEnv(binding, nil))
}

// limitError says whether err comes from a limit of budget.go or a check
// that the bounded program makes and expr does not, where expr would go on
// (and might not end).
func limitError(err error) bool {
	for _, s := range []string{"limit exceeded", "memory budget exceeded", "would build a string", "nested more than", "the value has more than", "the value holds more than", "as a key or an index", "invalid pair at index", "cannot measure"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// agree checks that a bounded evaluation (got, err) agrees with expr's.
func agree(t *testing.T, what string, c *compiled, env *Env, got any, err error) {
	t.Helper()
	if msg := disagreement(c, env, got, err); msg != "" {
		t.Fatalf("%s: %s", what, msg)
	}
}

// disagreement compares a bounded evaluation (got, err) with expr's: the
// same value, or both an error (the messages of the bounded functions may
// differ). It evaluates with expr only where that is safe: where the
// bounded program stayed within its limits, so did expr.
func disagreement(c *compiled, env *Env, got any, err error) string {
	if err != nil && limitError(err) {
		return ""
	}
	ref, rerr := referenceEval(c, env, false)
	if rerr == nil {
		if c.asBool {
			if _, ok := ref.(bool); !ok {
				rerr = errors.New("not a boolean")
			}
		} else {
			ref, rerr = normalize(ref, 0)
		}
	}
	if (err == nil) != (rerr == nil) {
		return fmt.Sprintf("bounded %v (%v), expr %v (%v)", got, err, ref, rerr)
	}
	if err != nil {
		return ""
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(ref)
	if string(a) != string(b) {
		return fmt.Sprintf("bounded %s, expr %s", a, b)
	}
	return ""
}

// Within the limits, bounding changes nothing: every operator and
// function boundAST rewrites answers what expr's does, errors included.
func TestBoundedAgreesWithExpr(t *testing.T) {
	input := map[string]any{
		"s": "Hello, Wörld <&>", "t": "hello", "n": 3.0, "z": 0.0, "l": []any{3.0, 1.0, 2.0, 1.0}, "nested": []any{[]any{1.0, []any{2.0}}, 3.0},
		"m": map[string]any{"a": 1.0, "b": "x"}, "pairs": []any{[]any{"a", 1.0}, []any{"b", 2.0}}, "empty": []any{}, "nil": nil,
		"words": []any{"b", "a", "c"}, "json": `{"a":[1,2,{"b":null}]}`, "b64": "aGVsbG8=", "when": "2026-01-02T15:04:05Z",
	}
	for _, e := range []string{
		// Operators.
		`input.s + input.t`, `"a" + input.t`, `input.n + 1`, `input.n + input.n`, `input.s + input.n`, `input.nil + "x"`, `"a" + "b"`,
		`input.s == input.t`, `input.t == "hello"`, `input.l == input.l`, `input.l == [3, 1, 2, 1]`, `input.m == input.m`, `input.nil == input.nil`, `input.n != input.z`, `input.l != input.empty`,
		`input.s < input.t`, `input.t >= input.s`, `input.n < input.z`, `input.s < input.n`,
		`input.t in input.words`, `"a" in input.words`, `input.n in input.l`, `input.l in input.nested`, `"a" in input.m`, `input.t in ["hello", "x"]`, `input.n in 1..5`, `input.s in input.s`,
		`input.s contains input.t`, `input.s contains "Wö"`, `input.s startsWith input.t`, `input.s endsWith ">"`, `input.nil contains "x"`, `input.n contains "x"`,
		`input.s matches "W.rld"`, `input.s matches input.t`, `input.nil matches "x"`, `input.s matches "[a-z]+"`,
		`input.m[input.t]`, `input.m["a"]`, `input.l[input.n - 2]`, `input.l[1:input.n]`, `input.s[input.z:2]`, `{(input.t): 1}`, `input.m?.[input.t]`, `input.nil?.[input.t]`, `input.l[input.l]`,
		// Loops.
		`map(input.l, # * 2)`, `filter(input.l, # > 1)`, `count(input.l, # > 1)`, `count([true, false, true])`, `sum(input.l)`, `sum(input.l, # * 2)`, `sum([input.n, input.n])`, `sum(["a", "b"])`,
		`reduce(input.l, #acc + #, 0)`, `reduce(input.words, #acc + #)`, `all(input.l, # > 0)`, `any(input.l, # > 2)`, `none(input.l, # > 5)`, `one(input.l, # == 3)`,
		`find(input.l, # < 3)`, `findIndex(input.l, # == 2)`, `findLast(input.l, # < 3)`, `findLastIndex(input.l, # == 1)`, `filter(input.l, # > 1)[0]`, `len(filter(input.l, # > 1))`,
		`map(filter(input.l, # > 1), # * 10)`, `groupBy(input.words, len(#))`, `sortBy(input.words, #)`, `sortBy(input.l, #, "desc")`, `count(input.l, # > 1) > 0`, `sum(map(input.l, # + 1))`,
		`let r = 1..10; reduce(r, #acc + reduce(r, #acc + #, 0), 0)`, `map(1..3, let x = #; x * x)`, `map(input.l, #index)`,
		// Builtins.
		`repeat(input.t, 3)`, `repeat(input.t, input.n)`, `join(input.words, ", ")`, `join(input.words)`, `join(input.l)`, `join(split(input.s, ""), "-")`,
		`replace(input.s, "l", "L")`, `replace(input.s, "", "_")`, `replace(input.s, "l", "")`, `split(input.s, ", ")`, `split(input.s, "l", 2)`, `split(input.s, "l", 0)`, `splitAfter(input.s, "l")`, `split(input.s, "")`,
		`upper(input.s)`, `lower(input.s)`, `upper(input.n)`, `trim("  x  ")`, `trim(input.s, "H>")`, `trim(input.s, "Hé>")`, `trimPrefix(input.s, "Hel")`, `trimSuffix(input.s, ">")`, `trimPrefix(" x")`,
		`indexOf(input.s, "o")`, `lastIndexOf(input.s, "o")`, `hasPrefix(input.s, "He")`, `hasSuffix(input.s, "x")`,
		`toJSON(input)`, `toJSON(input.m)`, `toJSON(1..3)`, `toJSON(0.1)`, `toJSON(-1e21)`, `toJSON(now())`, `toJSON(groupBy(input.words, #))`, `toJSON(duration("1h"))`, `toJSON(b"ab")`, `toJSON(nil)`, `toJSON([[], {}])`,
		`fromJSON(input.json)`, `fromJSON("{")`, `toBase64(input.s)`, `fromBase64(input.b64)`, `fromBase64("!")`,
		`string(input)`, `string(input.l)`, `string(1..3)`, `string(0.5)`, `string(-3)`, `string(nil)`, `string(input.m)`, `string(groupBy(input.words, #))`, `string(now())`,
		`int("12")`, `int(input.n)`, `int("x")`, `float("1.5")`, `duration("1h30m")`, `duration("x")`,
		`date(input.when)`, `date("2026-01-02", "2006-01-02")`, `date("2026-01-02 10:00", "2006-01-02 15:04", "Europe/Paris")`, `timezone("Europe/Paris").String()`, `date(input.when).Format("Monday 2 Jan")`,
		`max(input.l)`, `min(input.l)`, `mean(input.l)`, `median(input.l)`, `max(input.nested)`, `max(1, 2, 3)`, `median(input.empty)`, `max(input.words)`,
		`fromPairs(input.pairs)`, `fromPairs([[1, 2]])`, `fromPairs([1])`, `fromPairs([[1]])`,
		`uniq(input.l)`, `uniq([1, 1.0, "1"])`, `uniq(input.nested)`, `concat(input.l, input.words)`, `concat(input.empty)`, `flatten(input.nested)`, `flatten([[], [[]]])`,
		`sort(input.l)`, `sort(input.words, "desc")`, `sort(input.l, "x")`, `reverse(input.l)`, `get(input.m, input.t)`, `get(input.l, 10)`, `take(input.l, 2)`, `first(input.l)`, `last(input.words)`,
		`len(input.s)`, `type(input.l)`, `abs(-input.n)`, `now().Year()`, `$env.input.n`,
	} {
		v := valueOf(t, e)
		env := &Env{Input: input, Vars: map[string]any{}}
		got, err := v.Eval(env)
		agree(t, e, v.expr, env, got, err)
	}
}

// keys, values and toPairs answer in the order of the keys: expr's follow
// Go's map order, which changes from run to run, and a workflow's step
// must compute the same value each time it runs.
func TestMapListsAreOrdered(t *testing.T) {
	m := map[string]any{}
	for _, k := range []string{"d", "b", "a", "e", "c", "f", "h", "g"} {
		m[k] = k + k
	}
	want := map[string]string{
		"keys(input)":    `["a","b","c","d","e","f","g","h"]`,
		"values(input)":  `["aa","bb","cc","dd","ee","ff","gg","hh"]`,
		"toPairs(input)": `[["a","aa"],["b","bb"],["c","cc"],["d","dd"],["e","ee"],["f","ff"],["g","gg"],["h","hh"]]`,
	}
	want["keys(groupBy([3, 1, 2, 1.0, 1, 1.5, \"b\", \"a\", true, nil], #))"] = `[null,true,1,1,1.5,2,3,"a","b"]`
	want["values(groupBy([2, 1, 2], #))"] = `[[1],[2,2]]`
	for e, w := range want {
		for i := 0; i < 20; i++ {
			got, err := evalExpr(t, e, m)
			b, _ := json.Marshal(got)
			if err != nil || string(b) != w {
				t.Fatalf("%s = %s, %v; want %s", e, b, err, w)
			}
		}
	}
}
