package dsl

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// boundedFunc charges b for a call of a builtin (or an operator) on args,
// refusing before it allocates or works beyond the budget, then does what
// the builtin does.
type boundedFunc func(b *budget, args []any) (any, error)

// zoneSteps is the cost of loading a time zone, which reads the zone
// database: about 20 µs, as much as a few thousand steps.
const zoneSteps = 2000

// boundedFuncs replace expr's builtins of the same names (boundAST turns
// each call into one of them). Those not listed allocate and work O(1):
// len, type, abs, ceil, floor, round, first, last, take and the bit
// functions. now is replaced by the environment's.
var boundedFuncs = map[string]boundedFunc{
	"repeat":      boundRepeat,
	"join":        boundJoin,
	"replace":     boundReplace,
	"split":       boundSplit("split"),
	"splitAfter":  boundSplit("splitAfter"),
	"upper":       boundCase(unicode.ToUpper, "upper"),
	"lower":       boundCase(unicode.ToLower, "lower"),
	"trim":        boundTrim,
	"trimPrefix":  boundAffix("trimPrefix"),
	"trimSuffix":  boundAffix("trimSuffix"),
	"hasPrefix":   boundAffix("hasPrefix"),
	"hasSuffix":   boundAffix("hasSuffix"),
	"indexOf":     boundSearch("indexOf"),
	"lastIndexOf": boundSearch("lastIndexOf"),
	"toJSON":      boundToJSON,
	"fromJSON":    boundFromJSON,
	"toBase64":    boundToBase64,
	"fromBase64":  boundFromBase64,
	"string":      boundString,
	"int":         boundParse("int"),
	"float":       boundParse("float"),
	"duration":    boundParse("duration"),
	"date":        boundDate,
	"timezone":    boundTimezone,
	"max":         boundAggregate("max"),
	"min":         boundAggregate("min"),
	"mean":        boundAggregate("mean"),
	"median":      boundAggregate("median"),
	"keys":        boundMapList("keys", 16),
	"values":      boundMapList("values", 16),
	"toPairs":     boundMapList("toPairs", 64),
	"fromPairs":   boundFromPairs,
	"uniq":        boundUniq,
	"concat":      boundConcat,
	"flatten":     boundFlatten,
	"sort":        boundSort,
	"reverse":     boundReverse,
	"get":         boundGet,
}

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
	"contains":   boundContains,
	"startsWith": boundStartsWith,
	"endsWith":   boundEndsWith,
	"matches":    boundMatches,
	"matchesRe":  boundMatchesRe,
}

// boundedTable holds every bounded function under its hidden name.
var boundedTable = func() conf.FunctionsTable {
	t := conf.FunctionsTable{}
	for _, table := range []map[string]boundedFunc{boundedFuncs, boundedOps} {
		for name, f := range table {
			name := boundedName(name)
			t[name] = &builtin.Function{Name: name, Func: func(args ...any) (any, error) {
				b, _ := args[0].(*budget)
				return f(b, args[1:])
			}}
		}
	}
	return t
}()

// boundedFunctions makes the bounded functions known to a compilation. The
// compiler only reads the table, so compilations share it unless an option
// added functions of its own.
func boundedFunctions(c *conf.Config) {
	if len(c.Functions) == 0 {
		c.Functions = boundedTable
		return
	}
	for name, f := range boundedTable {
		c.Functions[name] = f
	}
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

// orig is expr's own builtin, which a bounded function calls once it has
// charged the budget, so that results and errors stay expr's.
func orig(name string) *builtin.Function {
	return builtin.Builtins[builtin.Index[name]]
}

// callers holds, for each of expr's builtins, the call of its
// implementation, found once rather than by name on every call.
var callers = func() map[string]func([]any) (any, error) {
	m := map[string]func([]any) (any, error){}
	for _, f := range builtin.Builtins {
		name := f.Name
		switch {
		case f.Fast != nil:
			m[name] = func(args []any) (any, error) { return f.Fast(args[0]), nil }
		case f.Safe != nil:
			m[name] = func(args []any) (any, error) {
				out, _, err := f.Safe(args...)
				return out, err
			}
		case f.Func != nil:
			m[name] = func(args []any) (any, error) { return f.Func(args...) }
		}
	}
	return m
}()

var (
	origConcat     = callers["concat"]
	origDate       = callers["date"]
	origFromBase64 = callers["fromBase64"]
	origFromJSON   = callers["fromJSON"]
	origFromPairs  = callers["fromPairs"]
	origGet        = callers["get"]
	origJoin       = callers["join"]
	origReplace    = callers["replace"]
	origReverse    = callers["reverse"]
	origSort       = callers["sort"]
	origString     = callers["string"]
	origTimezone   = callers["timezone"]
	origToBase64   = callers["toBase64"]
	origToJSON     = callers["toJSON"]
	origTrim       = callers["trim"]
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

// The string operators do what the VM does for them, type assertions
// (and their messages) included.

func boundContains(b *budget, args []any) (any, error) {
	if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
		return false, nil
	}
	s, sub := args[0].(string), args[1].(string)
	if err := b.step(searchSteps(len(s), len(sub))); err != nil {
		return nil, err
	}
	return strings.Contains(s, sub), nil
}

func boundStartsWith(b *budget, args []any) (any, error) {
	if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
		return false, nil
	}
	s, p := args[0].(string), args[1].(string)
	if err := b.step(textSteps(len(p))); err != nil {
		return nil, err
	}
	return strings.HasPrefix(s, p), nil
}

func boundEndsWith(b *budget, args []any) (any, error) {
	if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
		return false, nil
	}
	s, p := args[0].(string), args[1].(string)
	if err := b.step(textSteps(len(p))); err != nil {
		return nil, err
	}
	return strings.HasSuffix(s, p), nil
}

// matchSteps is the work of matching n bytes against a program of insts
// instructions: Go's matcher is linear in the text, but may follow every
// instruction for each byte, at up to 40 ns a byte and instruction on a
// busy 2-core machine ([a-z]{50}q over "abab..."), about what a step of a
// loop costs in 8.
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

// Builtins on text.

// boundRepeat keeps cairn's repeat, stricter than expr's about its count.
func boundRepeat(b *budget, p []any) (any, error) {
	s, _ := p[0].(string)
	var n int
	switch v := p[1].(type) {
	case int:
		n = v
	case int64:
		n = int(v)
	case float64:
		if v != math.Trunc(v) || v > math.MaxInt32 || v < math.MinInt32 {
			return nil, fmt.Errorf("repeat: count %v is not a whole number in range", v)
		}
		n = int(v)
	default:
		return nil, fmt.Errorf("repeat: count must be a number, not %T", p[1])
	}
	if n < 0 {
		return nil, fmt.Errorf("repeat: negative count %d", n)
	}
	if n > 0 && len(s) > MaxExprString/n {
		return nil, fmt.Errorf("repeat would build a string of %d bytes; the limit is %d", int64(len(s))*int64(n), MaxExprString)
	}
	if err := b.text("repeat", int64(len(s))*int64(n)); err != nil {
		return nil, err
	}
	return strings.Repeat(s, n), nil
}

func boundJoin(b *budget, args []any) (any, error) {
	var glue int64
	if len(args) == 2 {
		if g, ok := args[1].(string); ok {
			glue = int64(len(g))
		}
	}
	var n, total int64
	switch x := args[0].(type) {
	case []string:
		n = int64(len(x))
		for _, s := range x {
			total += int64(len(s))
		}
	case []any:
		n = int64(len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				total += int64(len(s))
			}
		}
	}
	if n > 1 {
		total += glue * (n - 1)
	}
	if err := b.list(n, 16); err != nil {
		return nil, err
	}
	if err := b.text("join", total); err != nil {
		return nil, err
	}
	return origJoin(args)
}

func boundReplace(b *budget, args []any) (any, error) {
	s, ok1 := args[0].(string)
	old, ok2 := args[1].(string)
	nw, ok3 := args[2].(string)
	if !ok1 || !ok2 || !ok3 {
		return origReplace(args)
	}
	// Counting, then replacing: two searches.
	if err := b.step(2 * searchSteps(len(s), len(old))); err != nil {
		return nil, err
	}
	k := count(s, old)
	if len(args) == 4 {
		if lim := runtime.ToInt(args[3]); lim >= 0 && lim < k {
			k = lim
		}
	}
	if err := b.text("replace", int64(len(s))+int64(k)*(int64(len(nw))-int64(len(old)))); err != nil {
		return nil, err
	}
	return origReplace(args)
}

// count is how many times strings.Replace and strings.Split find sep in s.
func count(s, sep string) int {
	if sep == "" {
		return utf8.RuneCountInString(s) + 1
	}
	return strings.Count(s, sep)
}

func boundSplit(name string) boundedFunc {
	origCall := callers[name]
	return func(b *budget, args []any) (any, error) {
		s, ok1 := args[0].(string)
		sep, ok2 := args[1].(string)
		if ok1 && ok2 {
			if err := b.step(2 * searchSteps(len(s), len(sep))); err != nil {
				return nil, err
			}
			parts := count(s, sep) + 1
			if sep == "" {
				parts = utf8.RuneCountInString(s)
			}
			if len(args) == 3 {
				if n := runtime.ToInt(args[2]); n == 0 {
					parts = 0
				} else if n > 0 && n < parts {
					parts = n
				}
			}
			if err := b.list(int64(parts), 16); err != nil {
				return nil, err
			}
		}
		return origCall(args)
	}
}

// boundCase charges upper and lower, whose result may be longer than s: a
// rune may grow by half, an invalid byte becomes the three of U+FFFD.
func boundCase(f func(rune) rune, name string) boundedFunc {
	origCall := callers[name]
	return func(b *budget, args []any) (any, error) {
		s, ok := args[0].(string)
		if !ok {
			return origCall(args)
		}
		// ASCII takes a fast path; other text costs a table lookup per
		// rune, about a step per byte.
		ascii := true
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				ascii = false
				break
			}
		}
		n := int64(len(s))
		if !ascii {
			if err := b.step(n); err != nil {
				return nil, err
			}
			if n *= 3; n > MaxExprString {
				n = 0
				for _, r := range s {
					n += int64(utf8.RuneLen(f(r)))
				}
			}
		}
		if err := b.text(name, n); err != nil {
			return nil, err
		}
		return origCall(args)
	}
}

func boundTrim(b *budget, args []any) (any, error) {
	s, ok := args[0].(string)
	if !ok {
		return origTrim(args)
	}
	steps := textSteps(len(s))
	if len(args) == 2 {
		if cut, ok := args[1].(string); ok {
			// Each rune trimmed is looked up in the cutset.
			steps = searchSteps(len(s), len(cut))
		}
	}
	if err := b.step(steps); err != nil {
		return nil, err
	}
	return origTrim(args)
}

// boundAffix charges the functions that compare an affix with one end.
func boundAffix(name string) boundedFunc {
	origCall := callers[name]
	return func(b *budget, args []any) (any, error) {
		if len(args) == 2 {
			if p, ok := args[1].(string); ok {
				if err := b.step(textSteps(len(p))); err != nil {
					return nil, err
				}
			}
		}
		return origCall(args)
	}
}

func boundSearch(name string) boundedFunc {
	origCall := callers[name]
	return func(b *budget, args []any) (any, error) {
		s, ok1 := args[0].(string)
		sub, ok2 := args[1].(string)
		if ok1 && ok2 {
			if err := b.step(searchSteps(len(s), len(sub))); err != nil {
				return nil, err
			}
		}
		return origCall(args)
	}
}

// boundParse charges parsing text into a number or a duration.
func boundParse(name string) boundedFunc {
	origCall := callers[name]
	return func(b *budget, args []any) (any, error) {
		if s, ok := args[0].(string); ok {
			if err := b.step(textSteps(len(s))); err != nil {
				return nil, err
			}
		}
		return origCall(args)
	}
}

func boundDate(b *budget, args []any) (any, error) {
	var text int
	for _, a := range args {
		if s, ok := a.(string); ok {
			text += len(s)
		}
	}
	// date tries up to seven layouts; with three strings it loads a zone.
	steps := 8 * textSteps(text)
	if len(args) == 3 {
		if _, ok := args[0].(string); ok {
			steps += zoneSteps
		}
	}
	if err := b.step(steps); err != nil {
		return nil, err
	}
	return origDate(args)
}

func boundTimezone(b *budget, args []any) (any, error) {
	if s, ok := args[0].(string); ok {
		if err := b.step(zoneSteps + textSteps(len(s))); err != nil {
			return nil, err
		}
	}
	return origTimezone(args)
}

// Builtins that print or read values.

func boundToJSON(b *budget, args []any) (any, error) {
	s := sizer{b: b, fn: "toJSON", json: true, limit: MaxExprString}
	if err := s.walk(args[0], 0); err != nil {
		return nil, err
	}
	// MarshalIndent writes the compact text, then the indented one.
	if err := b.text("toJSON", s.size); err != nil {
		return nil, err
	}
	if err := b.grow(2 * s.size); err != nil {
		return nil, err
	}
	return origToJSON(args)
}

func boundFromJSON(b *budget, args []any) (any, error) {
	if s, ok := args[0].(string); ok {
		// Decoding is slower than copying, and the values it builds take
		// more room than their text (a list of one-digit numbers: 12
		// times).
		if err := b.step(8 * textSteps(len(s))); err != nil {
			return nil, err
		}
		if err := b.grow(16 * int64(len(s))); err != nil {
			return nil, err
		}
	}
	return origFromJSON(args)
}

func boundToBase64(b *budget, args []any) (any, error) {
	if s, ok := args[0].(string); ok {
		if err := b.grow(int64(len(s))); err != nil { // []byte(s)
			return nil, err
		}
		if err := b.text("toBase64", int64(base64.StdEncoding.EncodedLen(len(s)))); err != nil {
			return nil, err
		}
	}
	return origToBase64(args)
}

func boundFromBase64(b *budget, args []any) (any, error) {
	if s, ok := args[0].(string); ok {
		if err := b.text("fromBase64", 2*int64(len(s))); err != nil { // the bytes, then the string
			return nil, err
		}
	}
	return origFromBase64(args)
}

func boundString(b *budget, args []any) (any, error) {
	s := sizer{b: b, fn: "string", limit: MaxExprString}
	if err := s.walk(args[0], 0); err != nil {
		return nil, err
	}
	if err := b.text("string", s.size); err != nil {
		return nil, err
	}
	return origString(args)
}

// Builtins on lists and maps.

// boundAggregate charges max, min, mean and median for every number they
// go through, nested lists included; median also copies and sorts them.
func boundAggregate(name string) boundedFunc {
	origCall := callers[name]
	return func(b *budget, args []any) (any, error) {
		n, err := walkSteps(b, name, args)
		if err != nil {
			return nil, err
		}
		if name == "median" {
			if err := b.list(n, 8); err != nil {
				return nil, err
			}
			if err := b.step(n * int64(bits.Len64(uint64(n)))); err != nil {
				return nil, err
			}
		}
		return origCall(args)
	}
}

// boundMapList is keys, values or toPairs, listing the entries in the
// order of their keys (keyLess): expr's follow Go's map order, which
// changes from run to run, and a step must compute the same value each
// time it runs.
func boundMapList(name string, elem int64) boundedFunc {
	origCall := callers[name]
	return func(b *budget, args []any) (any, error) {
		rv := reflect.ValueOf(args[0])
		if rv.Kind() != reflect.Map {
			return origCall(args)
		}
		n := int64(rv.Len())
		if err := b.list(n, elem); err != nil {
			return nil, err
		}
		keys := rv.MapKeys()
		ks := make([]any, len(keys))
		per := int64(bits.Len64(uint64(n))) // comparisons per key
		for i, k := range keys {
			ks[i] = k.Interface()
			if err := b.step(per * scalarSteps(ks[i])); err != nil {
				return nil, err
			}
		}
		order := make([]int, len(ks))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(i, j int) bool { return keyLess(ks[order[i]], ks[order[j]]) })
		switch name {
		case "keys":
			out := make([]any, len(ks))
			for i, o := range order {
				out[i] = ks[o]
			}
			return out, nil
		case "values":
			out := make([]any, len(ks))
			for i, o := range order {
				out[i] = rv.MapIndex(keys[o]).Interface()
			}
			return out, nil
		}
		out := make([][2]any, len(ks)) // the type of expr's toPairs
		for i, o := range order {
			out[i] = [2]any{ks[o], rv.MapIndex(keys[o]).Interface()}
		}
		return out, nil
	}
}

// keyLess orders map keys (which are never lists or maps): nil, booleans,
// numbers, text, times, then anything else by its text; equal values by
// the name of their type.
func keyLess(a, b any) bool {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra < rb
	}
	switch ra {
	case 1:
		if a.(bool) != b.(bool) {
			return !a.(bool)
		}
	case 2:
		if fa, fb := toFloat(a), toFloat(b); fa != fb {
			return fa < fb || (math.IsNaN(fb) && !math.IsNaN(fa))
		}
	case 3:
		if a.(string) != b.(string) {
			return a.(string) < b.(string)
		}
	case 4:
		if ta, tb := a.(time.Time), b.(time.Time); !ta.Equal(tb) {
			return ta.Before(tb)
		}
	case 5:
		if sa, sb := fmt.Sprint(a), fmt.Sprint(b); sa != sb {
			return sa < sb
		}
	}
	return fmt.Sprintf("%T", a) < fmt.Sprintf("%T", b)
}

func keyRank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case string:
		return 3
	case time.Time:
		return 4
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return 2
	}
	return 5
}

func toFloat(v any) float64 {
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return float64(rv.Int())
	case rv.CanUint():
		return float64(rv.Uint())
	}
	return rv.Float()
}

// boundFromPairs checks the pairs itself: expr's messages for a bad one
// print it, and a list can hold itself many times over.
func boundFromPairs(b *budget, args []any) (any, error) {
	v := reflect.ValueOf(args[0])
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return nil, fmt.Errorf("cannot transform %s from pairs", v.Kind())
	}
	n := v.Len()
	if err := b.list(int64(n), 64); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		p := reflect.ValueOf(v.Index(i).Interface())
		if p.Kind() != reflect.Slice && p.Kind() != reflect.Array {
			return nil, fmt.Errorf("invalid pair at index %d: %s", i, typeName(v.Index(i).Interface()))
		}
		if p.Len() != 2 {
			return nil, fmt.Errorf("invalid pair at index %d: length %d", i, p.Len())
		}
		if err := b.step(scalarSteps(p.Index(0).Interface())); err != nil {
			return nil, err
		}
	}
	return origFromPairs(args)
}

// boundUniq is expr's uniq, which compares each element with every one
// kept so far, charging each comparison first.
func boundUniq(b *budget, args []any) (any, error) {
	v := reflect.ValueOf(args[0])
	if v.Kind() != reflect.Array && v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("cannot uniq %s", v.Kind())
	}
	size := v.Len()
	if err := b.list(int64(size), 16); err != nil {
		return nil, err
	}
	ret := []any{}
	for i := 0; i < size; i++ {
		e := v.Index(i).Interface()
		per := scalarSteps(e)
		if isComposite(e) {
			var err error
			if per, err = walkSteps(b, "uniq", e); err != nil {
				return nil, err
			}
		}
		if err := b.step(per * int64(len(ret))); err != nil {
			return nil, err
		}
		dup := false
		for _, r := range ret {
			if runtime.Equal(e, r) {
				dup = true
				break
			}
		}
		if !dup {
			ret = append(ret, e)
		}
	}
	return ret, nil
}

// boundConcat is expr's concat with its result allocated once: expr's
// appends element by element, through reflection, growing as it goes.
func boundConcat(b *budget, args []any) (any, error) {
	if len(args) == 0 {
		return origConcat(args)
	}
	var total int64
	for _, a := range args {
		v := reflect.ValueOf(a)
		if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
			return nil, fmt.Errorf("cannot concat %s", v.Kind())
		}
		total += int64(v.Len())
	}
	if err := b.list(total, 16); err != nil {
		return nil, err
	}
	if total == 0 {
		return []any(nil), nil // as expr's: nil, not empty
	}
	arr := make([]any, 0, total)
	for _, a := range args {
		if x, ok := a.([]any); ok {
			arr = append(arr, x...)
			continue
		}
		v := reflect.ValueOf(a)
		for i := 0; i < v.Len(); i++ {
			arr = append(arr, v.Index(i).Interface())
		}
	}
	return arr, nil
}

// boundFlatten is expr's flatten built in one pass: expr's copies each
// element once per level it is nested in, which for a list nested 10,000
// deep is 50 million copies.
func boundFlatten(b *budget, args []any) (any, error) {
	v := reflect.ValueOf(args[0])
	if v.Kind() != reflect.Array && v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("cannot flatten %s", v.Kind())
	}
	ret := []any{}
	var flat func(v reflect.Value, depth int) error
	flat = func(v reflect.Value, depth int) error {
		if depth > builtin.MaxDepth {
			return builtin.ErrorMaxDepth
		}
		if err := b.list(int64(v.Len()), 16); err != nil {
			return err
		}
		for i := 0; i < v.Len(); i++ {
			e := v.Index(i)
			for e.Kind() == reflect.Interface || e.Kind() == reflect.Pointer {
				if e.IsNil() {
					break
				}
				e = e.Elem()
			}
			if e.Kind() == reflect.Array || e.Kind() == reflect.Slice {
				if err := flat(e, depth+1); err != nil {
					return err
				}
			} else {
				ret = append(ret, e.Interface())
			}
		}
		return nil
	}
	if err := flat(v, 0); err != nil {
		return nil, err
	}
	return ret, nil
}

func boundSort(b *budget, args []any) (any, error) {
	if n, ok := length(args[0]); ok {
		// Each element is compared about log2(n) times.
		per := int64(bits.Len64(uint64(n)))
		steps := int64(n) * per
		if s, ok := args[0].([]string); ok {
			for _, e := range s {
				steps += textSteps(len(e)) * per
			}
		} else if s, ok := args[0].([]any); ok {
			for _, e := range s {
				steps += scalarSteps(e) * per
			}
		}
		if err := b.step(steps); err != nil {
			return nil, err
		}
		if err := b.grow(16 * int64(n)); err != nil {
			return nil, err
		}
	}
	return origSort(args)
}

func boundReverse(b *budget, args []any) (any, error) {
	if n, ok := length(args[0]); ok {
		if err := b.list(int64(n), 16); err != nil {
			return nil, err
		}
	}
	return origReverse(args)
}

func boundGet(b *budget, args []any) (any, error) {
	if len(args) == 2 {
		if err := b.step(scalarSteps(args[1])); err != nil {
			return nil, err
		}
	}
	return origGet(args)
}
