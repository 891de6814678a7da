package dsl

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// cairnBuiltins are cairn's versions of expr's builtins of the same names,
// whose results differ from expr's: keys, values and toPairs list a map's
// entries in the order of its keys, and repeat is stricter about its
// count. They are what a call runs once costTable has charged it (each is
// in a charged class), and they know nothing of budgets.
var cairnBuiltins = map[string]func(args []any) (any, error){
	"repeat":  cairnRepeat,
	"keys":    mapList("keys"),
	"values":  mapList("values"),
	"toPairs": mapList("toPairs"),
}

// repeatCount is the count of a call of repeat: a whole number, as an int.
func repeatCount(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt32 || x < math.MinInt32 {
			return 0, fmt.Errorf("repeat: count %v is not a whole number in range", x)
		}
		return int(x), nil
	}
	return 0, fmt.Errorf("repeat: count must be a number, not %T", v)
}

// cairnRepeat is repeat refusing a count that is not a whole number
// (expr's truncates it); the size of what it builds is bounded by its
// charge (chargeRepeat), where expr's refuses any count over a million,
// even of an empty string.
func cairnRepeat(args []any) (any, error) {
	s, _ := args[0].(string)
	n, err := repeatCount(args[1])
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("repeat: negative count %d", n)
	}
	return strings.Repeat(s, n), nil
}

// mapList is keys, values or toPairs, listing the entries in the order of
// their keys (keyLess): expr's follow Go's map order, which changes from
// run to run, and a step must compute the same value each time it runs.
// Of anything but a map it answers what expr's does, an error.
func mapList(name string) func(args []any) (any, error) {
	exprs := callers[name]
	return func(args []any) (any, error) {
		rv := reflect.ValueOf(args[0])
		if rv.Kind() != reflect.Map {
			return exprs(args)
		}
		keys := rv.MapKeys()
		ks := make([]any, len(keys))
		for i, k := range keys {
			ks[i] = k.Interface()
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

// Failure is what fail(type, message[, data]) raises in an activity
// binding's expression: the attempt fails with an error of the author's
// type, which a workflow's catch can select on, instead of the
// ExpressionError of a mistake. The activity runtime turns it into the
// task's failure; Data is JSON-compatible, nil when not given.
type Failure struct {
	Type    string
	Message string
	Data    any
}

func (f *Failure) Error() string { return f.Type + ": " + f.Message }

// failSignatures are the argument types of fail, which expr's checker
// holds a call to: a literal of another type is a lint error.
var failSignatures = []any{new(func(string, string, ...any) any)}

// cairnFail is fail: it never returns a value. Its arguments are built
// already, under the expression's budgets, so it costs O(1) besides
// normalizing data, which normalize bounds.
func cairnFail(args ...any) (any, error) {
	if len(args) < 2 || len(args) > 3 {
		return nil, fmt.Errorf("fail takes an error type, a message and optional data, not %d arguments", len(args))
	}
	typ, ok := args[0].(string)
	if !ok || !nameRE.MatchString(typ) {
		return nil, fmt.Errorf("fail: the error type must be a name such as CardDeclined (a letter, then letters, digits, '_', '.' or '-'), not %s", describeArg(args[0]))
	}
	f := &Failure{Type: typ}
	if s, ok := args[1].(string); ok {
		f.Message = s
	} else {
		m, err := normalize(args[1], 0)
		if err != nil {
			return nil, fmt.Errorf("fail: message: %v", err)
		}
		f.Message = describeArg(m)
	}
	if len(args) == 3 {
		d, err := normalize(args[2], 0)
		if err != nil {
			return nil, fmt.Errorf("fail: data: %v", err)
		}
		f.Data = d
	}
	return nil, f
}

// describeArg is a short text of a value for a message: strings quoted,
// anything else as its JSON text.
func describeArg(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return typeName(v)
	}
	return truncateText(string(b), 200)
}

// truncateText cuts s to at most n bytes on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
