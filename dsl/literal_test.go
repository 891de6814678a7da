package dsl

import (
	"reflect"
	"testing"
)

// TestSharedLiteral: the literal of a static value, as Literal and Eval
// give it; none for a value with an expression.
func TestSharedLiteral(t *testing.T) {
	wf := parseOK(t, "name: X\nsteps:\n  - setStatus: {a: [1, 2], b: {c: null}}\n  - setStatus: {a: '${ 1 }'}\n")
	v := wf.Steps[0].(*SetStatusStep).Value
	shared, ok := v.SharedLiteral()
	lit, _ := v.Literal()
	ev, err := v.Eval(env())
	if !ok || err != nil || !reflect.DeepEqual(shared, lit) || !reflect.DeepEqual(shared, ev) {
		t.Errorf("SharedLiteral = %#v, %v; Literal %#v; Eval %#v, %v", shared, ok, lit, ev, err)
	}
	if _, ok := wf.Steps[1].(*SetStatusStep).Value.SharedLiteral(); ok {
		t.Error("a value with an expression reported itself literal")
	}
	if x, ok := (*Value)(nil).SharedLiteral(); !ok || x != nil {
		t.Errorf("an absent value: %v, %v", x, ok)
	}
}
