package dsl

import (
	"errors"
	"strings"
	"testing"
)

func bindingOf(t *testing.T, src, activity string) *Binding {
	t.Helper()
	wf, err := Parse("b.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return wf.Activities[activity].Binding
}

// Each url part is path-escaped where it stands ('/' too), query-escaped
// after the '?'; query: adds parameters in the order written, leaving out
// nulls and repeating lists.
func TestRequestURL(t *testing.T) {
	b := bindingOf(t, `name: U
activities:
  Get:
    http:
      url: https://api.example.com/orders/${ input.id }/lines/${ input.n }?v=${ input.v }
      method: GET
      query:
        zeta: ${ input.q }
        alpha: ${ input.tags }
        none: ${ input.missing }
        fixed: "a&b"
steps:
  - activity: Get
`, "Get")
	got, err := b.RequestURL(&Env{Input: map[string]any{
		"id": "a/b c", "n": 7.0, "v": "x&y=z", "q": "née ü", "tags": []any{"1 2", true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := "https://api.example.com/orders/a%2Fb%20c/lines/7?v=x%26y%3Dz&zeta=n%C3%A9e+%C3%BC&alpha=1+2&alpha=true&fixed=a%26b"
	if got != want {
		t.Fatalf("url\n got %s\nwant %s", got, want)
	}

	// A url without ${ } is sent as written, with the query appended.
	b = bindingOf(t, "name: V\nactivities:\n  Get:\n    http:\n      url: https://h.example/x?k=1\n      query: {q: '${ input }'}\nsteps:\n  - activity: Get\n", "Get")
	if got, err := b.RequestURL(&Env{Input: "ü"}); err != nil || got != "https://h.example/x?k=1&q=%C3%BC" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// A url part that cannot be text fails naming its expression and where it
// stands.
func TestRequestURLErrors(t *testing.T) {
	b := bindingOf(t, `name: E
activities:
  Get:
    http:
      url: https://api.example.com/orders/${ input.id }
      query: {q: "${ input.q }"}
steps:
  - activity: Get
`, "Get")
	_, err := b.RequestURL(&Env{Input: map[string]any{"id": nil}})
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Expr != "input.id" || ee.Pos != (Pos{5, 46}) || !strings.Contains(err.Error(), "not null") {
		t.Fatalf("got %v (%#v)", err, ee)
	}
	_, err = b.RequestURL(&Env{Input: map[string]any{"id": "1", "q": map[string]any{"a": 1.0}}})
	if !errors.As(err, &ee) || ee.Expr != "input.q" || ee.Pos != (Pos{6, 22}) || !strings.Contains(err.Error(), "query parameter 'q'") {
		t.Fatalf("got %v (%#v)", err, ee)
	}
}

// fail() raises a *Failure with its type, message and data, inside an
// EvalError that names the expression.
func TestFailBuiltin(t *testing.T) {
	b := bindingOf(t, `name: F
activities:
  Charge:
    expr: 'input.amount > 100 ? fail("CardDeclined", "over " + string(input.amount), {limit: 100}) : {ok: true}'
    retry: {retryable: [CardDeclined]}
steps:
  - activity: Charge
`, "Charge")
	_, err := b.Expr.Eval(&Env{Input: map[string]any{"amount": 150.0}})
	var f *Failure
	var ee *EvalError
	if !errors.As(err, &f) || !errors.As(err, &ee) {
		t.Fatalf("got %v", err)
	}
	if f.Type != "CardDeclined" || f.Message != "over 150" || f.Data.(map[string]any)["limit"] != 100.0 || ee.Pos != (Pos{4, 33}) {
		t.Fatalf("failure %+v at %v", f, ee.Pos)
	}
	if !b.Retries("CardDeclined") || b.Retries("Other") {
		t.Fatalf("retryable types not handed to the binding")
	}
	if v, err := b.Expr.Eval(&Env{Input: map[string]any{"amount": 1.0}}); err != nil || v.(map[string]any)["ok"] != true {
		t.Fatalf("got %v, %v", v, err)
	}
	// A computed type that is not a name is an expression error, not a
	// failure of that type.
	b = bindingOf(t, "name: G\nactivities:\n  A:\n    expr: fail(input, \"m\")\nsteps:\n  - activity: A\n", "A")
	_, err = b.Expr.Eval(&Env{Input: "not a name"})
	if errors.As(err, &f) || err == nil || !strings.Contains(err.Error(), "must be a name") {
		t.Fatalf("got %v", err)
	}
}

// Source names a value's text for run-time messages.
func TestValueSource(t *testing.T) {
	wf, err := Parse("s.yaml", []byte("name: S\nsteps:\n  - wait: {duration: '${ input.d }'}\n  - wait: {duration: 'PT${ input.s }S'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d1 := wf.Steps[0].(*WaitStep).Duration
	d2 := wf.Steps[1].(*WaitStep).Duration
	if d1.Source() != "input.d" || d2.Source() != "PT${ input.s }S" {
		t.Fatalf("sources %q %q", d1.Source(), d2.Source())
	}
	err = d1.EvalError(errors.New("not a duration"))
	if err.Error() != `3:26: evaluating "input.d": not a duration` {
		t.Fatalf("got %v", err)
	}
}

// A url without expressions is sent with its $${ escapes undone; one with
// expressions keeps its text as written, for messages.
func TestURLEscapes(t *testing.T) {
	b := bindingOf(t, "name: W\nactivities:\n  Get:\n    http:\n      url: https://h.example/a$${b}\nsteps:\n  - activity: Get\n", "Get")
	if b.URL != "https://h.example/a${b}" || b.HasURLTemplate() {
		t.Fatalf("url %q", b.URL)
	}
	b = bindingOf(t, "name: W\nactivities:\n  Get:\n    http:\n      url: https://h.example/$${x}/${ input }\nsteps:\n  - activity: Get\n", "Get")
	got, err := b.RequestURL(&Env{Input: "ü/1"})
	if err != nil || got != "https://h.example/${x}/%C3%BC%2F1" || b.URL != "https://h.example/$${x}/${ input }" {
		t.Fatalf("got %q, %v (url %q)", got, err, b.URL)
	}
}
