package redisstore

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// scriptLocal finds the script's line `local a, b, … = v1, v2, …` whose
// first value is first, and returns the names and the values.
func scriptLocal(t *testing.T, src, first string) (names, values []string) {
	t.Helper()
	for _, line := range strings.Split(src, "\n") {
		lhs, rhs, ok := strings.Cut(line, " = ")
		if !ok || !strings.HasPrefix(lhs, "local ") || !strings.HasPrefix(rhs, first) {
			continue
		}
		return strings.Split(strings.TrimPrefix(lhs, "local "), ", "), strings.Split(rhs, ", ")
	}
	t.Fatalf("commit_transition.lua has no line `local … = %s, …`", first)
	return nil, nil
}

// fieldNames are the struct's field names as the script spells its
// locals: first letter in lower case.
func fieldNames(v any) []string {
	ty := reflect.TypeOf(v)
	out := make([]string, ty.NumField())
	for i := range out {
		n := []rune(ty.Field(i).Name)
		n[0] = unicode.ToLower(n[0])
		out[i] = string(n)
	}
	return out
}

// filled sets every field of the struct v points to a value of its own,
// and returns the values in field order.
func filled(t *testing.T, v any) []any {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	var out []any
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("field %d", i))
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(1000 + i))
		case reflect.Slice:
			f.SetBytes([]byte(fmt.Sprintf("bytes %d", i)))
		case reflect.Interface:
			f.Set(reflect.ValueOf(fmt.Sprintf("any %d", i)))
		default:
			t.Fatalf("%s: no test value for %s", rv.Type().Field(i).Name, f.Type())
		}
		out = append(out, f.Interface())
	}
	return out
}

// TestCommitScriptHeader holds commit_transition.lua and the Go that calls
// it to one list of names: the script's header names KEYS[1..] and
// ARGV[1..] as commitKeys and commitArgs name their fields, in the same
// order; keys and argv list the fields in that order; the variable part
// starts right after the named one; the script's named result codes are
// the Go codes; and no KEYS[n] or ARGV[n] appears outside the header, so
// the body reads arguments by name only.
func TestCommitScriptHeader(t *testing.T) {
	src := commitTransitionSrc
	for _, c := range []struct {
		array, firstVar string
		fields          any
	}{
		{"KEYS", "firstTaskKey", commitKeys{}},
		{"ARGV", "firstVarArg", commitArgs{}},
	} {
		names, values := scriptLocal(t, src, c.array+"[1]")
		want := fieldNames(c.fields)
		if !reflect.DeepEqual(names, want) {
			t.Errorf("the script names %s\n%v\nthe Go struct %T\n%v", c.array, names, c.fields, want)
		}
		for i, v := range values {
			if v != fmt.Sprintf("%s[%d]", c.array, i+1) {
				t.Errorf("%s: name %d (%s) is %s", c.array, i+1, names[min(i, len(names)-1)], v)
			}
		}
		next := strconv.Itoa(len(want) + 1)
		if n, v := scriptLocal(t, src, next); len(n) != 1 || n[0] != c.firstVar || v[0] != next {
			t.Errorf("the variable %s start at `local %s = %s`, want `local %s = %s`", c.array, n[0], v[0], c.firstVar, next)
		}
		header := "local " + strings.Join(names, ", ") + " = " + strings.Join(values, ", ")
		re := regexp.MustCompile(regexp.QuoteMeta(c.array) + `\[\d+\]`)
		for i, line := range strings.Split(src, "\n") {
			if line != header && re.MatchString(line) {
				t.Errorf("line %d reads %s by number: %s", i+1, c.array, line)
			}
		}
	}

	var k commitKeys
	wantKeys := filled(t, &k)
	gotKeys := k.keys(0)
	if len(gotKeys) != len(wantKeys) {
		t.Fatalf("keys() gives %d keys, commitKeys has %d fields", len(gotKeys), len(wantKeys))
	}
	for i := range gotKeys {
		if gotKeys[i] != wantKeys[i] {
			t.Errorf("keys()[%d] = %q, want field %d (%q)", i, gotKeys[i], i, wantKeys[i])
		}
	}
	var a commitArgs
	wantArgs := filled(t, &a)
	if got := a.argv(0); !reflect.DeepEqual(got, wantArgs) {
		t.Errorf("argv() lists\n%v\nthe fields in order are\n%v", got, wantArgs)
	}

	codes := map[string]int{"codeOK": codeOK, "codeConflict": codeConflict, "codeDuplicate": codeDuplicate, "codeAlreadyRunning": codeAlreadyRunning, "codeGone": codeGone}
	names, values := scriptLocal(t, src, "0, ")
	if len(names) != len(values) {
		t.Fatalf("result codes: %v = %v", names, values)
	}
	for i, n := range names {
		want, ok := codes[n]
		if !ok {
			t.Errorf("the script's result code %s is not one of the Go codes", n)
		} else if values[i] != strconv.Itoa(want) {
			t.Errorf("the script's %s is %s, Go's is %d", n, values[i], want)
		}
	}
}
