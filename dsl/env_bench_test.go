package dsl

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// The benchmarks behind issue 20's cut of the expression environment: the
// expressions ReserveTicket evaluates in one instance, each in a fresh Env
// as the interpreter builds one per evaluation.
//
//	go test -run '^$' -bench 'EnvReserveTicket|Status|EncodeJSON' -benchmem -count 5 ./dsl

func reserveTicket(b *testing.B) *Workflow {
	b.Helper()
	src, err := os.ReadFile("../workflows/reserve-ticket.yaml")
	if err != nil {
		b.Fatal(err)
	}
	w, err := Parse("reserve-ticket.yaml", src)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// ticketEnv is what the interpreter hands an expression of ReserveTicket
// once the booking is confirmed.
func ticketEnv(vars map[string]any) *Env {
	return &Env{
		Input:    "user-42",
		Vars:     vars,
		Instance: InstanceInfo{ID: "4b1e0c9a-5d1f-4c1e-9a57-2f0d6a1c3e77", Name: "ReserveTicket", CreatedTime: time.Unix(1_700_000_000, 0).UTC()},
		Now:      time.Unix(1_700_000_030, 0).UTC(),
	}
}

func BenchmarkEnvReserveTicket(b *testing.B) {
	w := reserveTicket(b)
	binding := w.Activities["CalculateDiscount"].Binding.Expr
	offer := w.ByID["offer"].(*SetStatusStep).Value
	when := w.ByID["outcome"].(*SwitchStep).Cases[0].When
	ret := w.Steps[len(w.Steps)-1].(*ReturnStep).Value
	vars := map[string]any{"discount": 15.0, "confirmed": true}

	value := func(v *Value) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Eval(ticketEnv(vars)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("binding", value(binding))
	b.Run("setStatus", value(offer))
	b.Run("when", func(b *testing.B) {
		for b.Loop() {
			if ok, err := when.Eval(ticketEnv(vars)); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("return", value(ret))
	// instance: the names the environment builds only on demand.
	b.Run("instance", func(b *testing.B) {
		w, err := Parse("t.yaml", []byte("name: T\nsteps:\n  - return: ${ instance.id + ' ' + string(now()) + ' ' + input }\n"))
		if err != nil {
			b.Fatal(err)
		}
		v := w.Steps[0].(*ReturnStep).Value
		value(v)(b)
	})
}

// BenchmarkStatusSize measures ReserveTicket's offer, which the
// interpreter sizes before it stores it.
func BenchmarkStatusSize(b *testing.B) {
	v := map[string]any{"discount": 15.0, "discountTimeout": 60.0, "bookingUrl": "https://example.com/book/user-42"}
	for b.Loop() {
		if n, err := StatusSize(v); err != nil || n == 0 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkStatusJSON is the offer's text and size from one encoding;
// StatusSizeMarshal the two encodings it replaces in the engine.
func BenchmarkStatusJSON(b *testing.B) {
	v := map[string]any{"discount": 15.0, "discountTimeout": 60.0, "bookingUrl": "https://example.com/book/user-42"}
	b.Run("one", func(b *testing.B) {
		for b.Loop() {
			if _, n, err := StatusJSON(v); err != nil || n == 0 {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("two", func(b *testing.B) {
		for b.Loop() {
			if n, err := StatusSize(v); err != nil || n == 0 {
				b.Fatal(n, err)
			}
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncodeJSON is the offer encoded by EncodeJSON and by
// json.Marshal, which it replaces byte for byte.
func BenchmarkEncodeJSON(b *testing.B) {
	v := map[string]any{"discount": 15.0, "discountTimeout": 60.0, "bookingUrl": "https://example.com/book/user-42"}
	b.Run("EncodeJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeJSON(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
