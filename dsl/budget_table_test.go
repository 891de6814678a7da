package dsl

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// Every builtin of expr is in exactly one class of costTable, held in
// exactly one way, and every name the table holds is one of expr's. An
// upgrade of expr that brings a builtin fails here: say what a call of it
// costs and how it is charged before it can be used (until then compile
// refuses it, TestUncostedBuiltinIsRefused).
func TestCostTableCoversExpr(t *testing.T) {
	classOf := map[string]string{}
	for _, c := range costTable {
		ways := 0
		var names []string
		for _, way := range [][]string{c.free, c.loops, keysOf(c.charged), keysOf(c.rebuilt)} {
			if len(way) > 0 {
				ways++
				names = way
			}
		}
		if ways != 1 {
			t.Errorf("class %q holds its builtins in %d ways, want 1", c.cost, ways)
		}
		if !strings.HasPrefix(c.cost, "O(") {
			t.Errorf("class %q does not say what a call costs", c.cost)
		}
		for _, name := range names {
			if other, ok := classOf[name]; ok {
				t.Errorf("%s is in two classes: %q and %q", name, other, c.cost)
			}
			classOf[name] = c.cost
			if _, ok := builtin.Index[name]; !ok {
				t.Errorf("class %q holds %s, which expr does not have", c.cost, name)
			}
		}
	}
	for _, f := range builtin.Builtins {
		if _, ok := classOf[f.Name]; !ok {
			t.Errorf("expr's builtin %s is in no class of costTable: say what a call costs and how it is charged", f.Name)
		}
		// boundAST charges a loop's body only for the loops of the table.
		if f.Predicate != loopBuiltins[f.Name] {
			t.Errorf("%s: expr says it takes a predicate: %v; costTable says it is a loop: %v", f.Name, f.Predicate, loopBuiltins[f.Name])
		}
	}
	for name := range cairnBuiltins {
		if _, ok := boundedFuncs[name]; !ok {
			t.Errorf("cairn's %s is not charged, so expr's would run instead", name)
		}
	}
	for _, c := range costTable {
		for name := range c.charged {
			if cairnBuiltins[name] == nil && callers[name] == nil {
				t.Errorf("charged %s has nothing to run after its charge", name)
			}
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A builtin costTable does not hold is refused at compile time rather than
// run unbounded.
func TestUncostedBuiltinIsRefused(t *testing.T) {
	delete(costed, "len")
	defer func() { costed["len"] = true }()
	_, err := Parse("u.yaml", []byte("name: U\nsteps:\n  - return: \"${ len(input) }\"\n"))
	if err == nil || !strings.Contains(err.Error(), "unknown function 'len'") {
		t.Fatalf("got %v, want len refused as an unknown function", err)
	}
}

// What cairn relies on inside expr, beyond its API's types, each pinned
// here so that an upgrade that changes it fails a test rather than
// production. (That no expression can name what boundAST writes, "cairn
// b", is TestBoundedNamesAreHidden.)
func TestExprInternals(t *testing.T) {
	// callers runs each builtin through Fast, Safe or Func.
	for _, f := range builtin.Builtins {
		if f.Fast == nil && f.Safe == nil && f.Func == nil && !f.Predicate && f.Name != "now" {
			t.Errorf("builtin %s has no Fast, Safe or Func for callers to run", f.Name)
		}
	}

	// The per-iteration checks are constants of a type the compiler calls
	// without an argument slice (OpCallTyped).
	for name, op := range map[string]func(any, any) any{"tick": opTick, "loop": opLoop, "iter": opIter, "sortKey": opSortKey, "groupKey": opGroupKey, "key": opKey, "layout": opLayout} {
		if _, ok := checker.TypedFuncIndex(reflect.TypeOf(op), false); !ok {
			t.Errorf("op%s: the VM would call func(any, any) any through an argument slice", name)
		}
	}

	// scopeBytes: the VM allocates each loop's Scope in a pool that grows
	// by appending.
	if f, ok := reflect.TypeOf(vm.VM{}).FieldByName("scopePool"); !ok || f.Type != reflect.TypeOf([]vm.Scope(nil)) {
		t.Errorf("vm.VM has no scopePool []vm.Scope; scopeBytes charges for one")
	}

	// boundAST bounds the nodes of a builtin call that ast.Walk enters
	// (Arguments) and the one the optimizer folds map into (Map); a new
	// field holding nodes would run unbounded.
	var nodes []string
	nodeType := reflect.TypeOf((*ast.Node)(nil)).Elem()
	bt := reflect.TypeOf(ast.BuiltinNode{})
	for i := 0; i < bt.NumField(); i++ {
		if f := bt.Field(i); f.Type == nodeType || f.Type == reflect.SliceOf(nodeType) {
			nodes = append(nodes, f.Name)
		}
	}
	if strings.Join(nodes, " ") != "Arguments Map" {
		t.Errorf("ast.BuiltinNode holds nodes in %v, want [Arguments Map]", nodes)
	}

	// The sizer stops where expr's builtins do.
	if builtin.MaxDepth != maxExprDepth {
		t.Errorf("builtin.MaxDepth is %d, maxExprDepth %d", builtin.MaxDepth, maxExprDepth)
	}

	// The VM turns a function's panic into the expression's error, its
	// message the error's text, located at the call: how a budget error
	// reaches the user (compiled.run).
	spent := errors.New("work limit exceeded")
	prog, err := expr.Compile(` 1 + f(1, 2)`, expr.Env(map[string]any{"f": func(any, any) any { panic(spent) }}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = expr.Run(prog, map[string]any{"f": func(any, any) any { panic(spent) }})
	var fe *file.Error
	if !errors.As(err, &fe) || fe.Message != spent.Error() || fe.From != 5 {
		t.Errorf("a panic in a call: got %#v, want a file.Error %q from 5", err, spent)
	}

	// compiled.run says what this message of the VM's means.
	prog, err = expr.Compile(`len(1..2000000)`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&vm.VM{MemoryBudget: MaxExprMemory}).Run(prog, nil)
	if !errors.As(err, &fe) || fe.Message != "memory budget exceeded" {
		t.Errorf("over the VM's memory budget: got %v, want a file.Error \"memory budget exceeded\"", err)
	}
	// A pooled VM (vms) starts each run with its memory count at zero.
	prog, err = expr.Compile(`len(1..600000)`)
	if err != nil {
		t.Fatal(err)
	}
	machine := &vm.VM{MemoryBudget: MaxExprMemory}
	for i := 0; i < 2; i++ {
		if _, err := machine.Run(prog, nil); err != nil {
			t.Errorf("run %d of one VM within its budget: %v", i+1, err)
		}
	}

	// exprError reads these compile errors.
	for src, want := range map[string]string{
		"x + 1":                            "unknown name x",
		"instance.nme":                     "unknown field nme",
		strings.Repeat("1 + ", 1001) + "1": "exceeds maximum allowed nodes",
	} {
		_, err := expr.Compile(src, expr.Env(types.Map{"instance": instanceType}), expr.MaxNodes(MaxExprNodes))
		if !errors.As(err, &fe) || !strings.Contains(fe.Message, want) {
			t.Errorf("compiling %.20q: got %v, want a file.Error with %q", src, err, want)
		}
	}
	if _, err := expr.Compile("1", expr.AsBool()); err == nil || errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "expected bool, but got ") {
		t.Errorf("a condition yielding an int: got %v, want an error \"expected bool, but got ...\" without a position", err)
	}

	// The builtins cairn rebuilds fail as expr's do; cairn's toPairs
	// answers the type expr's does.
	for _, name := range []string{"concat", "uniq", "flatten"} {
		_, want := callers[name]([]any{1.0})
		_, got := boundedFuncs[name](newBudget(), []any{1.0})
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%s(1): cairn's fails with %v, expr's with %v", name, got, want)
		}
	}
	deep := any(1.0)
	for i := 0; i <= builtin.MaxDepth+1; i++ {
		deep = []any{deep}
	}
	_, want := callers["flatten"]([]any{deep})
	if _, got := boundedFuncs["flatten"](newBudget(), []any{deep}); want == nil || got == nil || got.Error() != want.Error() {
		t.Errorf("flatten too deep: cairn's fails with %v, expr's with %v", got, want)
	}
	pairs, err := callers["toPairs"]([]any{map[string]any{"a": 1.0}})
	if err != nil || reflect.TypeOf(pairs) != reflect.TypeOf([][2]any(nil)) {
		t.Errorf("expr's toPairs answers %T (%v), cairn's [][2]any", pairs, err)
	}
}
