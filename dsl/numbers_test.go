package dsl

import (
	"strings"
	"testing"
)

// An integral JSON number (a float64) works with %; a fraction, null or
// text fails with a message that says what to do.
func TestModuloOnJSONNumbers(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - return: ${ input.n % 4 }\n")
	v := wf.Steps[0].(*ReturnStep).Value
	for _, c := range []struct {
		in   any
		want any
		err  string
	}{
		{7.0, 3.0, ""},
		{-7.0, -3.0, ""},
		{8.0, 0.0, ""},
		{7.5, nil, "its left side is 7.5; round it first"},
		{nil, nil, "its left side is null"},
		{"7", nil, "its left side is a string"},
	} {
		got, err := v.Eval(&Env{Input: map[string]any{"n": c.in}})
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("n = %v: got %v, %v; want %v", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("n = %v: got %v, %v; want an error with %q", c.in, got, err, c.err)
		}
	}
	zero := parseOK(t, "name: X\nsteps:\n  - return: ${ 4 % input }\n").Steps[0].(*ReturnStep).Value
	if _, err := zero.Eval(&Env{Input: 0.0}); err == nil || !strings.Contains(err.Error(), "by zero") {
		t.Errorf("4 %% 0: %v", err)
	}
	// In a condition, and next to integers expr types itself.
	wf = parseOK(t, "name: X\nsteps:\n  - if: input % 2 == 1 && len([1, 2, 3]) % 2 == 1\n    return: odd\n  - return: even\n")
	for in, want := range map[float64]bool{3: true, 4: false} {
		got, err := wf.Steps[0].Base().If.Eval(&Env{Input: in})
		if err != nil || got != want {
			t.Errorf("%v odd: %v, %v", in, got, err)
		}
	}
}

// A type mistake lint could not see fails with the language's names for
// the types and a fix, keeping expr's own text.
func TestRuntimeTypeMessages(t *testing.T) {
	in := map[string]any{"s": "x", "n": 1.0, "b": true}
	for src, want := range map[string]string{
		"input.s + input.n": "'+' does not take a string and a number; to join text, convert with string(x)",
		"input.x > 1":       "'>' does not take null and a number; a value is null here",
		"input.b + 1":       "a boolean is not a number (use x ? 1 : 0) (invalid operation: bool + int)",
		"input.n.b":         "cannot read 'b' of a number",
	} {
		wf := parseOK(t, "name: X\nsteps:\n  - return: ${ "+src+" }\n")
		_, err := wf.Steps[0].(*ReturnStep).Value.Eval(&Env{Input: in})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), src) {
			t.Errorf("%s: %v, want the expression and %q", src, err, want)
		}
	}
	wf := parseOK(t, "name: X\nsteps:\n  - if: input.n + 1\n    return: 1\n")
	_, err := wf.Steps[0].Base().If.Eval(&Env{Input: in})
	if err == nil || !strings.Contains(err.Error(), "the condition yields a number, not a boolean; compare it") {
		t.Errorf("non-boolean condition: %v", err)
	}
}
