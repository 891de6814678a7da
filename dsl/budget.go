package dsl

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"
	"unicode/utf8"
)

// The limits of one evaluation of one expression.
//
// expr's VM counts, against MaxExprMemory, only the elements of the lists,
// maps and ranges its own opcodes build. Everything else an expression can
// make the process do is counted here instead, before it is done: boundAST
// (budget_patch.go) rewrites each loop body, each operator that copies or
// scans text or walks a value (budget_ops.go), and each builtin that
// allocates or scans (costTable, budget_funcs.go), into calls of bounded
// functions, which charge a per-evaluation budget first and fail the
// expression, and only it, when the budget is spent.
const (
	// MaxExprSteps bounds the work of one evaluation. A step is one node of
	// a loop body (map, filter, reduce, ...) run for one element, one
	// element of a list or map that an operation goes through, or textStep
	// bytes of text it copies, scans, compares or hashes. 10,000,000 steps
	// take about a second at worst on a 2-core machine: far above any
	// expression written for a workflow, far below what holds up an engine.
	MaxExprSteps = 10_000_000
	// MaxExprAlloc bounds the bytes of strings, lists and maps one
	// evaluation may build beyond what the VM counts, and of the VM's state
	// for each loop it starts, added up over the evaluation (garbage
	// included, since the collector may not have run). With MaxExprMemory
	// it keeps one evaluation under about 100 MB.
	MaxExprAlloc = 32 << 20
	// MaxExprString bounds one string an expression builds. Nothing larger
	// fits anywhere in cairn: inputs, events, variables and interpolated
	// strings are all at most 1 MiB.
	MaxExprString = 1 << 20
	// maxExprDepth bounds how deep a function walks into nested lists and
	// maps (expr's own builtins stop at the same depth), so that a value
	// nested a million deep by reduce cannot exhaust the goroutine's stack.
	maxExprDepth = 10_000
	// textStep is how many bytes of text count as one step.
	textStep = 64
)

// budget is what is left to one evaluation. The VM runs one program on one
// goroutine, so it needs no lock.
type budget struct {
	steps int64
	alloc int64
}

func newBudget() *budget {
	return &budget{steps: MaxExprSteps, alloc: MaxExprAlloc}
}

var (
	errSteps = fmt.Errorf("work limit exceeded: the expression takes more than %d steps (a step is one operation inside map, filter, reduce or another loop, one element of a list or map gone through, or %d bytes of text processed)", MaxExprSteps, textStep)
	errAlloc = fmt.Errorf("memory limit exceeded: the expression allocates more than %d MiB for the strings, lists and maps its functions and operators build and the loops it starts", MaxExprAlloc>>20)
	// errNoBudget means a bounded function ran outside compiled.run, which
	// always provides one; refusing is safer than running unbounded.
	errNoBudget = errors.New("internal error: expression evaluated without a budget")
)

// step charges n steps of work.
func (b *budget) step(n int64) error {
	if b == nil {
		return errNoBudget
	}
	b.steps -= n
	if b.steps < 0 {
		b.steps = -1 // stays spent, without wrapping around
		return errSteps
	}
	return nil
}

// grow charges n bytes of allocation.
func (b *budget) grow(n int64) error {
	if b == nil {
		return errNoBudget
	}
	b.alloc -= n
	if b.alloc < 0 {
		b.alloc = -1
		return errAlloc
	}
	return nil
}

// text charges fn building a string of n bytes: the single-string limit,
// the copy and the allocation.
func (b *budget) text(fn string, n int64) error {
	if n > MaxExprString {
		return fmt.Errorf("%s would build a string of %d bytes; the limit is %d", fn, n, MaxExprString)
	}
	if err := b.step(n/textStep + 1); err != nil {
		return err
	}
	return b.grow(n)
}

// list charges building a list of n elements of elem bytes each.
func (b *budget) list(n, elem int64) error {
	if err := b.step(n + 1); err != nil {
		return err
	}
	return b.grow(n * elem)
}

// textSteps is the work of going once through n bytes of text.
func textSteps(n int) int64 { return int64(n)/textStep + 1 }

// searchSteps is the work of looking for a needle of m bytes in n bytes.
// Go's search is linear on average, but its Rabin-Karp fallback compares
// every window whose hash collides, so a crafted needle makes it O(n*m);
// the second term charges that worst case (it equals the first for needles
// up to textStep bytes).
func searchSteps(n, m int) int64 {
	return textSteps(n+m) + int64(n)*int64(m)/(textStep*textStep)
}

// sizer walks a value for a function about to go through it, charging one
// step per element and textSteps per string, refusing values nested more
// than maxExprDepth, and estimating (from above) the length of the value's
// text: encoding/json's MarshalIndent with a two-space indent when json is
// set, fmt's %v otherwise. It stops as soon as the estimate passes limit
// or the budget is spent, so that a list holding itself a thousand times
// over (reduce(1..60, [#acc, #acc], 0) is 2^60 elements in 120) costs no
// more than the budget to refuse.
type sizer struct {
	b     *budget
	fn    string // the function, for messages
	json  bool
	limit int64 // 0: no limit on the size
	size  int64
}

func (s *sizer) add(n int64) error {
	s.size += n
	if s.limit > 0 && s.size > s.limit {
		return fmt.Errorf("%s would build a string of more than %d bytes; the limit is %d", s.fn, s.limit, MaxExprString)
	}
	return nil
}

func (s *sizer) walk(v any, depth int) error {
	if depth > maxExprDepth {
		return fmt.Errorf("%s: the value is nested more than %d deep", s.fn, maxExprDepth)
	}
	if err := s.b.step(1); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		return s.add(5) // null, <nil>
	case bool:
		return s.add(5)
	case string:
		if err := s.b.step(textSteps(len(x))); err != nil {
			return err
		}
		if s.json {
			return s.add(jsonStringLen(x))
		}
		return s.add(int64(len(x)))
	case int:
		return s.add(numLen(float64(x)))
	case float64:
		return s.add(numLen(x))
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, time.Duration:
		return s.add(24) // the longest of them, -1.2345678901234567e-308
	case time.Time:
		return s.add(80) // with a zone name and a monotonic reading
	case *time.Location:
		return s.add(int64(len(x.String())) + 2)
	case []byte:
		if err := s.b.step(textSteps(len(x))); err != nil {
			return err
		}
		if s.json {
			return s.add(int64(len(x))*4/3 + 6) // base64
		}
		return s.add(int64(len(x))*4 + 2) // [255 255 ...]
	case []any:
		return s.list(len(x), depth, func(i int) any { return x[i] })
	case map[string]any:
		if err := s.open(len(x), depth); err != nil {
			return err
		}
		for k, e := range x {
			if err := s.key(k, depth); err != nil {
				return err
			}
			if err := s.walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return s.walk(rv.String(), depth)
	case reflect.Slice, reflect.Array:
		return s.list(rv.Len(), depth, func(i int) any { return rv.Index(i).Interface() })
	case reflect.Map:
		if err := s.open(rv.Len(), depth); err != nil {
			return err
		}
		it := rv.MapRange()
		for it.Next() {
			if err := s.walk(it.Key().Interface(), depth+1); err != nil {
				return err
			}
			if err := s.walk(it.Value().Interface(), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	// Nothing else reaches an expression; a struct or pointer would print
	// its fields, which this does not know: refuse rather than guess.
	return fmt.Errorf("%s: cannot measure a value of type %T", s.fn, v)
}

// open adds what a list or map of n elements at depth costs besides its
// elements: brackets, separators and, in indented JSON, a line per
// element.
func (s *sizer) open(n, depth int) error {
	if err := s.b.step(int64(n)); err != nil {
		return err
	}
	if n == 0 {
		return s.add(5) // [], {}, map[]
	}
	if s.json {
		return s.add(int64(n)*(2*int64(depth)+6) + 2*int64(depth) + 4)
	}
	return s.add(int64(n) + 5)
}

func (s *sizer) list(n, depth int, at func(int) any) error {
	if err := s.open(n, depth); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := s.walk(at(i), depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (s *sizer) key(k string, depth int) error {
	if err := s.b.step(textSteps(len(k))); err != nil {
		return err
	}
	if s.json {
		return s.add(jsonStringLen(k) + 2) // "k": v
	}
	return s.add(int64(len(k)) + 1) // k:v
}

// numLen bounds the length of a number as JSON or %v writes it: exact for
// whole numbers below 1e21, which both write in plain digits.
func numLen(x float64) int64 {
	if x != math.Trunc(x) || math.Abs(x) >= 1e21 {
		return 24 // the longest of them, -1.2345678901234567e-308
	}
	n := int64(1)
	if x < 0 {
		n++
		x = -x
	}
	for x >= 10 {
		x /= 10
		n++
	}
	return n
}

// jsonStringLen bounds the length of s quoted by encoding/json, which
// escapes quotes, backslashes, control characters, <, >, &, U+2028, U+2029
// and invalid UTF-8 (as \ufffd).
func jsonStringLen(s string) int64 {
	n := int64(2)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += int64(size)
		}
		i += size
	}
	return n
}

// walkSteps charges going through v once (comparing or hashing it) and
// returns what it charged, so that a caller comparing v many times can
// charge the same again for each.
func walkSteps(b *budget, fn string, v any) (int64, error) {
	before := b.steps
	s := sizer{b: b, fn: fn}
	if err := s.walk(v, 0); err != nil {
		return 0, err
	}
	return before - b.steps, nil
}

// scalarSteps is the work of comparing or hashing a scalar v: its text,
// or one step.
func scalarSteps(v any) int64 {
	if s, ok := v.(string); ok {
		return textSteps(len(s))
	}
	return 1
}

// isComposite says whether v is a list or a map, which comparing or
// hashing must walk.
func isComposite(v any) bool {
	switch v.(type) {
	case nil, bool, string, int, float64, time.Time, time.Duration:
		return false
	case []any, map[string]any:
		return true
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return true
	}
	return false
}
