package dsl

import (
	"encoding/base64"
	"fmt"
	"math/bits"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// costTable is the cost of each of expr's builtins, by class: what one
// call may cost, in the O(1), O(n), O(n·m), O(m+n) terms cel-go's cost
// estimator uses (n and m are the sizes of the arguments, in elements or
// bytes; the charges say how many steps an element or byte is), and how
// that is charged. It is the one place that says so; a class holds its builtins
// in one of four ways:
//
//   - free: nothing to charge; boundAST leaves the call as it is;
//   - loops: boundAST charges each run of the predicate by the size of its
//     body, and the scope the VM allocates to start the loop;
//   - charged: boundAST turns each call into a call of its bounded
//     function (boundedFuncs), which runs the builtin's charge, refusing
//     before any work or allocation beyond the budget, then the builtin:
//     cairn's (builtins_cairn.go) or expr's, so that results and messages
//     stay theirs;
//   - rebuilt: cairn builds the result itself, charging as it goes,
//     because expr's allocates more than its result, or does work that
//     can only be counted as it is done.
//
// TestCostTableCoversExpr fails when an upgrade of expr brings a builtin
// that no class holds; until one does, compileSafely refuses it.
var costTable = []costClass{
	{cost: "O(1)", free: []string{"len", "type", "abs", "ceil", "floor", "round", "first", "last", "take",
		"bitand", "bitor", "bitxor", "bitnand", "bitnot", "bitshl", "bitshr", "bitushr"}},
	{cost: "O(1), the environment's now (expr's is disabled)", free: []string{"now"}},
	{cost: "O(n·body), a loop over n elements", loops: []string{"all", "none", "any", "one", "filter", "map",
		"find", "findIndex", "findLast", "findLastIndex", "count", "sum", "groupBy", "sortBy", "reduce"}},
	{cost: "O(n), reading n bytes of text", charged: each(readsText(0), "int", "float", "duration")},
	{cost: "O(m), comparing an affix of m bytes with one end of the text", charged: each(readsText(1), "hasPrefix", "hasSuffix", "trimPrefix", "trimSuffix")},
	{cost: "O(k), hashing a key of k bytes", charged: each(hashesKey(1), "get")},
	{cost: "O(n·m), searching n bytes for m, or trimming them of a cutset of m", charged: each(searches, "indexOf", "lastIndexOf", "trim")},
	{cost: "O(n), going through n elements, nested ones included", charged: each(walks, "max", "min", "mean")},
	{cost: "O(n log n), sorting n elements", charged: map[string]costFunc{"sort": chargeSort, "median": chargeMedian}},
	{cost: "O(n log n), listing the n entries of a map in the order of their keys", charged: map[string]costFunc{
		"keys": listsMap(16), "values": listsMap(16), "toPairs": listsMap(64)}},
	{cost: "O(n), building n bytes of text", charged: map[string]costFunc{
		"repeat": chargeRepeat, "join": chargeJoin, "upper": changesCase(unicode.ToUpper), "lower": changesCase(unicode.ToLower),
		"toBase64": chargeToBase64, "fromBase64": chargeFromBase64, "string": chargeString, "toJSON": chargeToJSON}},
	{cost: "O(n·m), searching n bytes for m and building the result", charged: map[string]costFunc{
		"replace": chargeReplace, "split": chargeSplit, "splitAfter": chargeSplit}},
	{cost: "O(n), building a list or map of n elements", charged: map[string]costFunc{
		"reverse": chargeReverse, "fromJSON": chargeFromJSON, "fromPairs": chargeFromPairs}},
	{cost: "O(n), parsing n bytes, and loading a time zone", charged: map[string]costFunc{"date": chargeDate, "timezone": chargeTimezone}},
	{cost: "O(m+n), concatenating lists into one allocation", rebuilt: map[string]boundedFunc{"concat": boundConcat}},
	{cost: "O(n), flattening n elements at any depth in one pass", rebuilt: map[string]boundedFunc{"flatten": boundFlatten}},
	{cost: "O(n²), comparing each element with those kept so far", rebuilt: map[string]boundedFunc{"uniq": boundUniq}},
}

// costClass is one class of costTable; it holds its builtins in one of
// its four ways.
type costClass struct {
	cost    string                 // what one call may cost, and of what
	free    []string               // nothing to charge
	loops   []string               // charged by boundAST, per run of the body
	charged map[string]costFunc    // charged before the builtin runs
	rebuilt map[string]boundedFunc // built by cairn, charging as it goes
}

// costFunc charges b for a call of the builtin fn on args before it runs,
// or refuses the call. It charges what it can see: an argument of a type
// the builtin does not take is left to the builtin, which fails on it
// with expr's message.
type costFunc func(b *budget, fn string, args []any) error

// boundedFunc charges b for a call of a builtin (or an operator) on args,
// refusing before it allocates or works beyond the budget, then does what
// the builtin does.
type boundedFunc func(b *budget, args []any) (any, error)

func each(f costFunc, names ...string) map[string]costFunc {
	m := make(map[string]costFunc, len(names))
	for _, n := range names {
		m[n] = f
	}
	return m
}

// boundedFuncs are the bounded functions of the charged and rebuilt
// builtins, by the builtins' names: boundAST turns each call of one of
// those into a call of its bounded function. A charged builtin's is its
// charge followed by the builtin.
var boundedFuncs = func() map[string]boundedFunc {
	m := map[string]boundedFunc{}
	for _, c := range costTable {
		for name, charge := range c.charged {
			run := cairnBuiltins[name]
			if run == nil {
				run = callers[name]
			}
			m[name] = func(b *budget, args []any) (any, error) {
				if err := charge(b, name, args); err != nil {
					return nil, err
				}
				return run(args)
			}
		}
		for name, f := range c.rebuilt {
			m[name] = f
		}
	}
	return m
}()

// loopBuiltins are the builtins of costTable's loops.
var loopBuiltins = names(func(c costClass) []string { return c.loops })

// costed holds every builtin of costTable. compileSafely refuses any
// other: a builtin an upgrade of expr brings would run unbounded.
var costed = names(func(c costClass) []string {
	all := append(append([]string{}, c.free...), c.loops...)
	for name := range c.charged {
		all = append(all, name)
	}
	for name := range c.rebuilt {
		all = append(all, name)
	}
	return all
})

func names(of func(costClass) []string) map[string]bool {
	m := map[string]bool{}
	for _, c := range costTable {
		for _, name := range of(c) {
			m[name] = true
		}
	}
	return m
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

// orig is expr's own builtin.
func orig(name string) *builtin.Function {
	return builtin.Builtins[builtin.Index[name]]
}

// callers holds, for each of expr's builtins, the call of its
// implementation, found once rather than by name on every call.
var callers = func() map[string]func([]any) (any, error) {
	m := map[string]func([]any) (any, error){}
	for _, f := range builtin.Builtins {
		switch {
		case f.Fast != nil:
			m[f.Name] = func(args []any) (any, error) { return f.Fast(args[0]), nil }
		case f.Safe != nil:
			m[f.Name] = func(args []any) (any, error) {
				out, _, err := f.Safe(args...)
				return out, err
			}
		case f.Func != nil:
			m[f.Name] = func(args []any) (any, error) { return f.Func(args...) }
		}
	}
	return m
}()

// zoneSteps is the cost of loading a time zone, which reads the zone
// database: as much as a few thousand steps (docs/benchmarks.md, "Figures
// behind the code").
const zoneSteps = 2000

// The charges the classes share.

// readsText charges going once through the text of args[i].
func readsText(i int) costFunc {
	return func(b *budget, _ string, args []any) error {
		if i < len(args) {
			if s, ok := args[i].(string); ok {
				return b.step(textSteps(len(s)))
			}
		}
		return nil
	}
}

// hashesKey charges hashing (or comparing) the key args[i].
func hashesKey(i int) costFunc {
	return func(b *budget, _ string, args []any) error {
		if i < len(args) {
			return b.step(scalarSteps(args[i]))
		}
		return nil
	}
}

// searches charges looking in the text args[0] for args[1] (indexOf,
// lastIndexOf), or trimming it of the runes of args[1], spaces if there
// is none (trim).
func searches(b *budget, _ string, args []any) error {
	s, ok := args[0].(string)
	if !ok {
		return nil
	}
	m := 0
	if len(args) > 1 {
		sub, ok := args[1].(string)
		if !ok {
			return nil
		}
		m = len(sub)
	}
	return b.step(searchSteps(len(s), m))
}

// walks charges going through every number of a list, nested lists
// included: max, min and mean of a list or of their arguments.
func walks(b *budget, fn string, args []any) error {
	_, err := walkSteps(b, fn, args)
	return err
}

// The charges of single builtins.

// chargeRepeat charges cairn's repeat for the string it builds; a count it
// refuses costs nothing.
func chargeRepeat(b *budget, fn string, args []any) error {
	s, _ := args[0].(string)
	n, err := repeatCount(args[1])
	if err != nil || n < 0 {
		return nil
	}
	// The product may not fit an int64.
	if n > 0 && len(s) > MaxExprString/n {
		return fmt.Errorf("%s would build a string of %d bytes; the limit is %d", fn, int64(len(s))*int64(n), MaxExprString)
	}
	return b.text(fn, int64(len(s))*int64(n))
}

func chargeJoin(b *budget, fn string, args []any) error {
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
		return err
	}
	return b.text(fn, total)
}

// changesCase charges upper and lower, whose result may be longer than
// the text: a rune may grow by half, an invalid byte becomes the three of
// U+FFFD.
func changesCase(f func(rune) rune) costFunc {
	return func(b *budget, fn string, args []any) error {
		s, ok := args[0].(string)
		if !ok {
			return nil
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
				return err
			}
			if n *= 3; n > MaxExprString {
				n = 0
				for _, r := range s {
					n += int64(utf8.RuneLen(f(r)))
				}
			}
		}
		return b.text(fn, n)
	}
}

func chargeToBase64(b *budget, fn string, args []any) error {
	s, ok := args[0].(string)
	if !ok {
		return nil
	}
	if err := b.grow(int64(len(s))); err != nil { // []byte(s)
		return err
	}
	return b.text(fn, int64(base64.StdEncoding.EncodedLen(len(s))))
}

func chargeFromBase64(b *budget, fn string, args []any) error {
	if s, ok := args[0].(string); ok {
		return b.text(fn, 2*int64(len(s))) // the bytes, then the string
	}
	return nil
}

// chargeString measures the text of a value (fmt's %v) before it is
// printed.
func chargeString(b *budget, fn string, args []any) error {
	s := sizer{b: b, fn: fn, limit: MaxExprString}
	if err := s.walk(args[0], 0); err != nil {
		return err
	}
	return b.text(fn, s.size)
}

// chargeToJSON measures the indented JSON of a value before it is
// written.
func chargeToJSON(b *budget, fn string, args []any) error {
	s := sizer{b: b, fn: fn, json: true, limit: MaxExprString}
	if err := s.walk(args[0], 0); err != nil {
		return err
	}
	// MarshalIndent writes the compact text, then the indented one.
	if err := b.text(fn, s.size); err != nil {
		return err
	}
	return b.grow(2 * s.size)
}

func chargeReplace(b *budget, fn string, args []any) error {
	s, ok1 := args[0].(string)
	old, ok2 := args[1].(string)
	nw, ok3 := args[2].(string)
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	// Counting, then replacing: two searches.
	if err := b.step(2 * searchSteps(len(s), len(old))); err != nil {
		return err
	}
	k := count(s, old)
	if len(args) == 4 {
		if lim := runtime.ToInt(args[3]); lim >= 0 && lim < k {
			k = lim
		}
	}
	return b.text(fn, int64(len(s))+int64(k)*(int64(len(nw))-int64(len(old))))
}

// count is how many times strings.Replace and strings.Split find sep in s.
func count(s, sep string) int {
	if sep == "" {
		return utf8.RuneCountInString(s) + 1
	}
	return strings.Count(s, sep)
}

// chargeSplit charges split and splitAfter: counting the parts, then
// cutting them.
func chargeSplit(b *budget, _ string, args []any) error {
	s, ok1 := args[0].(string)
	sep, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil
	}
	if err := b.step(2 * searchSteps(len(s), len(sep))); err != nil {
		return err
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
	return b.list(int64(parts), 16)
}

func chargeDate(b *budget, _ string, args []any) error {
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
	return b.step(steps)
}

func chargeTimezone(b *budget, _ string, args []any) error {
	if s, ok := args[0].(string); ok {
		return b.step(zoneSteps + textSteps(len(s)))
	}
	return nil
}

func chargeFromJSON(b *budget, _ string, args []any) error {
	s, ok := args[0].(string)
	if !ok {
		return nil
	}
	// Decoding is slower than copying, and the values it builds take more
	// room than their text (a list of one-digit numbers: 12 times).
	if err := b.step(8 * textSteps(len(s))); err != nil {
		return err
	}
	return b.grow(16 * int64(len(s)))
}

// chargeMedian charges going through every number, nested lists
// included, then copying and sorting them.
func chargeMedian(b *budget, fn string, args []any) error {
	n, err := walkSteps(b, fn, args)
	if err != nil {
		return err
	}
	if err := b.list(n, 8); err != nil {
		return err
	}
	return b.step(n * int64(bits.Len64(uint64(n))))
}

func chargeSort(b *budget, _ string, args []any) error {
	n, ok := length(args[0])
	if !ok {
		return nil
	}
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
		return err
	}
	return b.grow(16 * int64(n))
}

func chargeReverse(b *budget, _ string, args []any) error {
	if n, ok := length(args[0]); ok {
		return b.list(int64(n), 16)
	}
	return nil
}

// listsMap charges keys, values or toPairs of a map, each element elem
// bytes: listing its n entries, and sorting them by their keys, each key
// compared about log2(n) times.
func listsMap(elem int64) costFunc {
	return func(b *budget, _ string, args []any) error {
		rv := reflect.ValueOf(args[0])
		if rv.Kind() != reflect.Map {
			return nil
		}
		n := int64(rv.Len())
		if err := b.list(n, elem); err != nil {
			return err
		}
		per := int64(bits.Len64(uint64(n)))
		for it := rv.MapRange(); it.Next(); {
			k := it.Key()
			steps := int64(0)
			if k.Kind() == reflect.String {
				steps = textSteps(k.Len()) // without boxing the key
			} else {
				steps = scalarSteps(k.Interface())
			}
			if err := b.step(per * steps); err != nil {
				return err
			}
		}
		return nil
	}
}

// chargeFromPairs checks the pairs itself: expr's messages for a bad one
// print it, and a list can hold itself many times over.
func chargeFromPairs(b *budget, _ string, args []any) error {
	v := reflect.ValueOf(args[0])
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return fmt.Errorf("cannot transform %s from pairs", v.Kind())
	}
	n := v.Len()
	if err := b.list(int64(n), 64); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		p := reflect.ValueOf(v.Index(i).Interface())
		if p.Kind() != reflect.Slice && p.Kind() != reflect.Array {
			return fmt.Errorf("invalid pair at index %d: %s", i, typeName(v.Index(i).Interface()))
		}
		if p.Len() != 2 {
			return fmt.Errorf("invalid pair at index %d: length %d", i, p.Len())
		}
		if err := b.step(scalarSteps(p.Index(0).Interface())); err != nil {
			return err
		}
	}
	return nil
}

// The builtins cairn rebuilds.

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
		return callers["concat"](args)
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
