package dsl

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// The operators and per-iteration checks that boundAST writes calls of;
// the builtins are charged by costTable (budget_funcs.go).

// boundedOps are the operators that boundAST writes calls of.
var boundedOps = map[string]boundedFunc{
	"add":        boundAdd,
	"eq":         boundEqual(false),
	"ne":         boundEqual(true),
	"lt":         boundCompare(runtime.Less),
	"gt":         boundCompare(runtime.More),
	"le":         boundCompare(runtime.LessOrEqual),
	"ge":         boundCompare(runtime.MoreOrEqual),
	"in":         boundIn,
	"contains":   textOp(strings.Contains, searchFor),
	"startsWith": textOp(strings.HasPrefix, compareAffix),
	"endsWith":   textOp(strings.HasSuffix, compareAffix),
	"matches":    boundMatches,
	"matchesRe":  boundMatchesRe,
}

// unaryOp is a check of one value that runs once per loop iteration or
// per key. boundAST calls it as a constant of the type
// func(any, any) any, which the VM calls directly (OpCallTyped): a
// registered function would cost an argument slice per call once the VM's
// preallocated one is used up, which in a loop is every call.
type unaryOp func(b *budget, v any) (any, error)

func (f unaryOp) typed() func(any, any) any {
	return func(b, v any) any {
		bb, _ := b.(*budget)
		out, err := f(bb, v)
		if err != nil {
			panic(err) // the VM recovers it as the expression's error
		}
		return out
	}
}

// opTick runs once per run of every loop body, so it skips unaryOp's
// indirection.
func opTick(b, n any) any {
	bb, _ := b.(*budget)
	if err := bb.step(int64(n.(int))); err != nil {
		panic(err)
	}
	return nil
}

var (
	opLoop     = unaryOp(boundLoop).typed()
	opIter     = unaryOp(boundIter).typed()
	opSortKey  = unaryOp(boundKey).typed()
	opGroupKey = unaryOp(boundGroupKey).typed()
	opKey      = unaryOp(boundIndex).typed()
	opLayout   = unaryOp(boundLayout).typed()
)

// scopeBytes is what the VM allocates for each loop it starts: a Scope in
// a pool that grows by appending and is reused only by the next
// evaluation, so a loop started a million times inside another costs a
// million Scopes (twice over, with the copies of the growing pool).
var scopeBytes = 2 * int64(reflect.TypeOf(vm.Scope{}).Size())

// boundLoop charges starting a loop over v.
func boundLoop(b *budget, v any) (any, error) {
	if err := b.step(1); err != nil {
		return nil, err
	}
	return v, b.grow(scopeBytes)
}

// boundIter charges a loop without a body (count or sum of a list): two
// steps an element, as for a body of one node.
func boundIter(b *budget, v any) (any, error) {
	if n, ok := length(v); ok {
		if err := b.step(2 * int64(n)); err != nil {
			return nil, err
		}
	}
	return boundLoop(b, v)
}

// boundKey charges a key of sortBy, compared about log2(n) <= 20 times.
func boundKey(b *budget, v any) (any, error) {
	return v, b.step(20 * scalarSteps(v))
}

// boundGroupKey charges a key of groupBy, hashed once into a map entry
// that holds a growing list: about 200 bytes an element, measured.
func boundGroupKey(b *budget, v any) (any, error) {
	if err := b.step(scalarSteps(v)); err != nil {
		return nil, err
	}
	return v, b.grow(192)
}

// boundIndex charges hashing a computed key, and refuses a list or map as
// a key or index: it would fail anyway, with a message that prints it out
// whole.
func boundIndex(b *budget, v any) (any, error) {
	if isComposite(v) {
		return nil, fmt.Errorf("cannot use %s as a key or an index", typeName(v))
	}
	return v, b.step(scalarSteps(v))
}

// boundLayout admits a time layout whose formatted text fits: each element
// of a layout expands to at most three times its length.
func boundLayout(b *budget, v any) (any, error) {
	if s, ok := v.(string); ok {
		if err := b.text("Format", 3*int64(len(s))+64); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func length(v any) (int, bool) {
	switch x := v.(type) {
	case []any:
		return len(x), true
	case string:
		return len(x), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.String:
		return rv.Len(), true
	}
	return 0, false
}

// Operators.

func boundAdd(b *budget, args []any) (any, error) {
	x, ok1 := args[0].(string)
	y, ok2 := args[1].(string)
	if ok1 && ok2 {
		if err := b.text("+", int64(len(x))+int64(len(y))); err != nil {
			return nil, err
		}
		return x + y, nil
	}
	return runtime.Add(args[0], args[1]), nil
}

// equalSteps charges comparing x and y: the shorter walk of the two bounds
// what reflect.DeepEqual does, and walking x is one such bound.
func equalSteps(b *budget, x, y any) error {
	xs, ok1 := x.(string)
	ys, ok2 := y.(string)
	switch {
	case ok1 && ok2:
		if len(xs) != len(ys) {
			return b.step(1)
		}
		return b.step(textSteps(len(xs)))
	case isComposite(x) && isComposite(y):
		_, err := walkSteps(b, "==", x)
		return err
	}
	return b.step(1)
}

func boundEqual(negate bool) boundedFunc {
	return func(b *budget, args []any) (any, error) {
		if err := equalSteps(b, args[0], args[1]); err != nil {
			return nil, err
		}
		return runtime.Equal(args[0], args[1]) != negate, nil
	}
}

func boundCompare(op func(a, b any) bool) boundedFunc {
	return func(b *budget, args []any) (any, error) {
		x, ok1 := args[0].(string)
		y, ok2 := args[1].(string)
		if ok1 && ok2 {
			if err := b.step(textSteps(min(len(x), len(y)))); err != nil {
				return nil, err
			}
		}
		return op(args[0], args[1]), nil
	}
}

func boundIn(b *budget, args []any) (any, error) {
	needle, coll := args[0], args[1]
	rv := reflect.ValueOf(coll)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		// Each element is fetched (through reflection) and compared with
		// the needle, which bounds the comparison.
		per := scalarSteps(needle) + 1
		if isComposite(needle) {
			var err error
			if per, err = walkSteps(b, "in", needle); err != nil {
				return nil, err
			}
		}
		if err := b.step(int64(rv.Len()) * per); err != nil {
			return nil, err
		}
	case reflect.Map:
		if err := b.step(scalarSteps(needle)); err != nil {
			return nil, err
		}
	}
	return runtime.In(needle, coll), nil
}

// textOp is a string operator, op, whose work on s and t is steps(s, t).
// It does what the VM does for the operator, type assertions (and their
// messages) included.
func textOp(op func(s, t string) bool, steps func(s, t string) int64) boundedFunc {
	return func(b *budget, args []any) (any, error) {
		if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
			return false, nil
		}
		s, t := args[0].(string), args[1].(string)
		if err := b.step(steps(s, t)); err != nil {
			return nil, err
		}
		return op(s, t), nil
	}
}

// searchFor is the work of looking for sub in s (contains).
func searchFor(s, sub string) int64 { return searchSteps(len(s), len(sub)) }

// compareAffix is the work of comparing p with one end of s (startsWith,
// endsWith).
func compareAffix(_, p string) int64 { return textSteps(len(p)) }

// matchSteps is the work of matching n bytes against a program of insts
// instructions: Go's matcher is linear in the text, but may follow every
// instruction for each byte, about what a step of a loop costs in 8
// (docs/benchmarks.md, "Figures behind the code").
func matchSteps(n, insts int) int64 {
	return textSteps(n) + int64(n)*int64(insts)/8
}

func boundMatches(b *budget, args []any) (any, error) {
	if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
		return false, nil
	}
	pattern := args[1].(string)
	// Compiling costs about a step per byte of pattern, twice over.
	if err := b.step(2 * int64(len(pattern))); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return matchRe(b, args[0], re, progSize(pattern))
}

func boundMatchesRe(b *budget, args []any) (any, error) {
	if runtime.IsNil(args[0]) {
		return false, nil
	}
	return matchRe(b, args[0], args[1].(*regexp.Regexp), args[2].(int))
}

func matchRe(b *budget, v any, re *regexp.Regexp, insts int) (any, error) {
	if s, ok := v.(string); ok {
		if err := b.step(matchSteps(len(s), insts)); err != nil {
			return nil, err
		}
		return re.MatchString(s), nil
	}
	t := v.([]byte)
	if err := b.step(matchSteps(len(t), insts)); err != nil {
		return nil, err
	}
	return re.Match(t), nil
}
