package dsl

import (
	"reflect"
	"regexp"
	"regexp/syntax"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Names that only boundAST writes: expr's lexer reads no space inside a
// name, so no expression can name them, call them, or shadow them.
const (
	budgetEnv = "cairn budget" // the run-time environment's *budget
	budgetVar = "cairn b"      // a let that loads it once per evaluation
)

func boundedName(fn string) string { return "cairn " + fn }

var (
	intType    = reflect.TypeOf(0)
	stringType = reflect.TypeOf("")
)

// boundAST rewrites a checked and optimized expression so that everything
// whose cost the VM does not count is charged to the evaluation's budget
// first:
//
//   - every loop (map, filter, reduce, sortBy, ...) charges the scope the
//     VM allocates to start it, and its body, each time it runs, its size
//     in nodes; count and sum without a predicate charge the length of
//     their list;
//   - the operators that copy or scan text or walk values (+ on strings,
//     == and != between two computed values, comparisons of strings, in,
//     contains, startsWith, endsWith, matches) and computed keys and
//     indexes become bounded functions;
//   - the builtins that allocate or scan become bounded functions
//     (boundedFuncs): costTable says which, and how each is charged;
//   - a time's Format is refused a layout that would build too much.
//
// It runs after the checker, so compile errors and their positions are
// expr's own, and after the optimizer, which can itself write a + (sum of
// a literal list). New nodes take the location of the node they stand for,
// so run-time errors point where they did. They carry no type (any), which
// the compiler handles as a value of unknown type, as it does for
// variables. It says whether the program needs a budget, and has loops.
func boundAST(node *ast.Node) bounder {
	bd := &bounder{}
	ast.Walk(node, bd)
	if !bd.used {
		return *bd
	}
	root := *node
	let := &ast.VariableDeclaratorNode{Name: budgetVar, Value: &ast.IdentifierNode{Value: budgetEnv}, Expr: root}
	let.Value.SetLocation(root.Location())
	let.SetLocation(root.Location())
	let.SetNature(*root.Nature())
	*node = let
	return *bd
}

type bounder struct {
	used  bool // some node calls a bounded function
	loops bool // some node is a loop
}

// call is a call of the bounded function fn with the budget and args,
// located at loc.
func (bd *bounder) call(fn string, loc file.Location, args ...ast.Node) *ast.CallNode {
	bd.used = true
	b := &ast.IdentifierNode{Value: budgetVar}
	b.SetLocation(loc)
	callee := &ast.IdentifierNode{Value: boundedName(fn)}
	callee.SetLocation(loc)
	c := &ast.CallNode{Callee: callee, Arguments: append([]ast.Node{b}, args...)}
	c.SetLocation(loc)
	return c
}

// typed is a call of op on the budget and arg, which the VM makes
// without allocating (see unaryOp).
func (bd *bounder) typed(op func(any, any) any, loc file.Location, arg ast.Node) *ast.CallNode {
	bd.used = true
	b := &ast.IdentifierNode{Value: budgetVar}
	b.SetLocation(loc)
	callee := &ast.ConstantNode{Value: op}
	callee.SetType(reflect.TypeOf(op))
	callee.SetLocation(loc)
	c := &ast.CallNode{Callee: callee, Arguments: []ast.Node{b, arg}}
	c.SetLocation(loc)
	return c
}

func intNode(n int, loc file.Location) ast.Node {
	i := &ast.IntegerNode{Value: n}
	i.SetType(intType)
	i.SetLocation(loc)
	return i
}

func (bd *bounder) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		bd.binary(node, n)
	case *ast.BuiltinNode:
		bd.builtin(node, n)
	case *ast.MemberNode:
		if keyNeedsCheck(n.Property) {
			n.Property = bd.typed(opKey, n.Property.Location(), n.Property)
		}
	case *ast.SliceNode:
		if n.From != nil && keyNeedsCheck(n.From) {
			n.From = bd.typed(opKey, n.From.Location(), n.From)
		}
		if n.To != nil && keyNeedsCheck(n.To) {
			n.To = bd.typed(opKey, n.To.Location(), n.To)
		}
	case *ast.PairNode:
		if keyNeedsCheck(n.Key) {
			n.Key = bd.typed(opKey, n.Key.Location(), n.Key)
		}
	case *ast.CallNode:
		// A time's Format writes its layout out with each element
		// expanded: its result is bounded by the layout's length.
		if m, ok := n.Callee.(*ast.MemberNode); ok && len(n.Arguments) > 0 {
			if p, ok := m.Property.(*ast.StringNode); ok && (p.Value == "Format" || p.Value == "AppendFormat") {
				last := len(n.Arguments) - 1
				arg := n.Arguments[last]
				c := bd.typed(opLayout, arg.Location(), arg)
				c.SetType(stringType)
				n.Arguments[last] = c
			}
		}
	}
}

func (bd *bounder) binary(node *ast.Node, n *ast.BinaryNode) {
	l, r := n.Left, n.Right
	var fn string
	switch n.Operator {
	case "+":
		if mayBeText(l) && mayBeText(r) && !(isLiteral(l) && isLiteral(r)) {
			fn = "add"
		}
	case "==", "!=":
		// Against a literal the work is bounded by the literal.
		if !isLiteral(l) && !isLiteral(r) && mayBeLarge(l) && mayBeLarge(r) {
			fn = map[string]string{"==": "eq", "!=": "ne"}[n.Operator]
		}
	case "<", ">", "<=", ">=":
		if !isLiteral(l) && !isLiteral(r) && mayBeText(l) && mayBeText(r) {
			fn = map[string]string{"<": "lt", ">": "gt", "<=": "le", ">=": "ge"}[n.Operator]
		}
	case "in":
		// A literal list becomes a constant set (optimizer), a literal
		// range a pair of comparisons, and a range the VM builds is
		// counted by its memory budget.
		// Looking a text up in a constant set hashes it all, though.
		if _, ok := r.(*ast.ConstantNode); ok || isLiteral(r) || isRange(r) {
			if mayBeText(l) && !isLiteral(l) {
				n.Left = bd.typed(opKey, l.Location(), l)
			}
			return
		}
		fn = "in"
	case "contains":
		if !isLiteral(l) {
			fn = "contains"
		}
	case "startsWith", "endsWith":
		if !isLiteral(r) {
			fn = n.Operator
		}
	case "matches":
		if isLiteral(l) && isLiteral(r) {
			return
		}
		if s, ok := r.(*ast.StringNode); ok {
			// The checker compiled the pattern already; compile it once
			// more, here, for the VM to reuse, as expr's compiler does.
			re, err := regexp.Compile(s.Value)
			if err != nil {
				return
			}
			c := &ast.ConstantNode{Value: re}
			c.SetLocation(r.Location())
			ast.Patch(node, bd.call("matchesRe", n.Location(), l, c, intNode(progSize(s.Value), r.Location())))
			return
		}
		fn = "matches"
	}
	if fn != "" {
		ast.Patch(node, bd.call(fn, n.Location(), l, r))
	}
}

func (bd *bounder) builtin(node *ast.Node, n *ast.BuiltinNode) {
	if loopBuiltins[n.Name] {
		bd.loops = true
		loc := n.Location()
		for i, a := range n.Arguments {
			p, ok := a.(*ast.PredicateNode)
			if !ok {
				continue
			}
			body := p.Node
			// One run of the body costs its size, plus one for the loop
			// itself (the VM's index, jump and end test).
			cost := countNodes(body) + 1
			switch {
			case n.Name == "sortBy" && i == 1:
				body = bd.typed(opSortKey, body.Location(), body)
			case n.Name == "groupBy" && i == 1:
				body = bd.typed(opGroupKey, body.Location(), body)
			}
			p.Node = bd.tick(body, cost, loc)
		}
		// The optimizer folds filter+map into filter with a Map, which
		// ast.Walk does not enter.
		if n.Map != nil {
			ast.Walk(&n.Map, bd)
			n.Map = bd.tick(n.Map, countNodes(n.Map)+1, loc)
		}
		// The VM allocates a scope for each loop it starts.
		if (n.Name == "count" || n.Name == "sum") && len(n.Arguments) == 1 {
			n.Arguments[0] = bd.typed(opIter, loc, n.Arguments[0])
		} else {
			n.Arguments[0] = bd.typed(opLoop, loc, n.Arguments[0])
		}
		return
	}
	if _, ok := boundedFuncs[n.Name]; ok {
		ast.Patch(node, bd.call(n.Name, n.Location(), n.Arguments...))
	}
}

// tick makes body charge cost steps each time it runs.
func (bd *bounder) tick(body ast.Node, cost int, loc file.Location) ast.Node {
	s := &ast.SequenceNode{Nodes: []ast.Node{bd.typed(opTick, loc, intNode(cost, loc)), body}}
	s.SetLocation(body.Location())
	s.SetNature(*body.Nature())
	return s
}

type nodeCounter int

func (c *nodeCounter) Visit(*ast.Node) { *c++ }

// countNodes is the size of a loop body, what one run of it costs.
func countNodes(n ast.Node) int {
	var c nodeCounter
	ast.Walk(&n, &c)
	return max(int(c), 1)
}

// isLiteral says whether n is a literal scalar, whose size the source
// bounds.
func isLiteral(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode:
		return true
	case *ast.ConstantNode:
		return !isComposite(x.Value)
	}
	return false
}

func isRange(n ast.Node) bool {
	b, ok := n.(*ast.BinaryNode)
	return ok && b.Operator == ".."
}

func nodeKind(n ast.Node) reflect.Kind {
	return n.Type().Kind() // any when the checker does not know
}

// mayBeText: a string, or unknown until run time.
func mayBeText(n ast.Node) bool {
	k := nodeKind(n)
	return k == reflect.String || k == reflect.Interface
}

// mayBeLarge: a value whose comparison can cost more than a step.
func mayBeLarge(n ast.Node) bool {
	switch nodeKind(n) {
	case reflect.String, reflect.Interface, reflect.Slice, reflect.Array, reflect.Map:
		return true
	}
	return false
}

// keyNeedsCheck: a computed key or index that may be text (hashed) or a
// list or map (which an error message would print out whole).
func keyNeedsCheck(n ast.Node) bool {
	if isLiteral(n) {
		return false
	}
	switch nodeKind(n) {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Bool:
		return false
	}
	return true
}

// progSize is the number of instructions of a compiled pattern, the
// factor by which matching it costs more than reading the text.
func progSize(pattern string) int {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return len(pattern) + 1
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return len(pattern) + 1
	}
	return len(prog.Inst)
}
