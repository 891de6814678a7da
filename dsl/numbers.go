package dsl

import (
	"fmt"
	"math"
	"reflect"

	"github.com/expr-lang/expr/ast"
)

// JSON numbers are float64 at run time, and expr's % takes only Go
// integers, so `input.n % 4` failed with "float64 % int" for every n.
// modPatcher rewrites each % whose operands are not both integer literals
// into a call of opMod, which takes any whole number, float64 included.
// It runs before expr's checker (expr.Patch), so the checker types the
// call and the budget pass sees it as any other call.
type modPatcher struct{}

// opModType is the type under which the VM calls opMod directly
// (OpCallTyped), without an argument slice.
var opModType = reflect.TypeOf(opMod)

func (modPatcher) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || b.Operator != "%" {
		return
	}
	_, li := b.Left.(*ast.IntegerNode)
	_, ri := b.Right.(*ast.IntegerNode)
	if li && ri {
		return // expr folds it
	}
	callee := &ast.ConstantNode{Value: opMod}
	callee.SetType(opModType)
	callee.SetLocation(b.Location())
	call := &ast.CallNode{Callee: callee, Arguments: []ast.Node{b.Left, b.Right}}
	ast.Patch(node, call)
}

// opMod is a % b for whole numbers of any Go number type; the result is
// an int, as expr's % answers.
func opMod(a, b any) any {
	x, err := wholeNumber("left", a)
	if err != nil {
		panic(err)
	}
	y, err := wholeNumber("right", b)
	if err != nil {
		panic(err)
	}
	if y == 0 {
		panic(fmt.Errorf("'%%' by zero: %d %% 0 has no value", x))
	}
	return x % y
}

// maxExact is the largest whole number a float64 holds exactly.
const maxExact = 1 << 53

func wholeNumber(side string, v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > maxExact {
			return 0, fmt.Errorf("'%%' takes whole numbers, but its %s side is %v; round it first, e.g. int(x) or round(x)", side, x)
		}
		return int(x), nil
	case nil:
		return 0, fmt.Errorf("'%%' takes whole numbers, but its %s side is null; give a default with ??", side)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() <= math.MaxInt64 {
			return int(rv.Uint()), nil
		}
	case reflect.Float32:
		return wholeNumber(side, rv.Float())
	}
	return 0, fmt.Errorf("'%%' takes whole numbers, but its %s side is %s", side, typeName(v))
}
