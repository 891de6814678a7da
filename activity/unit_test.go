package activity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestErrors(t *testing.T) {
	if NonRetryable(nil) != nil {
		t.Fatal("NonRetryable(nil) is not nil")
	}
	plain := errors.New("card declined")
	if !IsRetryable(plain) || IsRetryable(NonRetryable(plain)) {
		t.Fatal("IsRetryable")
	}
	if info := errorInfo(plain, 2); info.Type != ErrTypeFailed || info.Message != "card declined" || !info.Retryable || info.Attempt != 2 {
		t.Fatalf("plain: %+v", info)
	}
	final := NonRetryable(fmt.Errorf("charging: %w", plain))
	if !errors.Is(final, plain) {
		t.Fatal("NonRetryable hides the cause")
	}
	if info := errorInfo(final, 1); info.Type != ErrTypeFailed || info.Message != "charging: card declined" || info.Retryable {
		t.Fatalf("final: %+v", info)
	}
	typed := fmt.Errorf("ctx: %w", &Error{Type: "OutOfStock", Message: "sold out"})
	if info := errorInfo(typed, 1); info.Type != "OutOfStock" || info.Message != "sold out" || !info.Retryable {
		t.Fatalf("typed: %+v", info)
	}
	if info := errorInfo(NonRetryable(typed), 1); info.Type != "OutOfStock" || info.Message != "sold out" || info.Retryable {
		t.Fatalf("typed, final: %+v", info)
	}
	if info := errorInfo(&Error{Cause: plain}, 1); info.Type != ErrTypeFailed || info.Message != "card declined" {
		t.Fatalf("cause only: %+v", info)
	}
	long := errorInfo(errors.New(strings.Repeat("é", 10000)), 1).Message
	if len(long) > maxMessageBytes || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Fatalf("long message: %d bytes", len(long))
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	h := func(ctx context.Context, t Task) (any, error) { return nil, nil }
	r.Register("B", h)
	r.Register("A.x-1", h)
	if !r.Has("B") || r.Has("C") || fmt.Sprint(r.Names()) != "[A.x-1 B]" {
		t.Fatalf("registry %v", r.Names())
	}
	var nilReg *Registry
	if nilReg.Has("B") {
		t.Fatal("nil registry has B")
	}
	for _, bad := range []struct {
		name string
		h    Handler
	}{{"B", h}, {"", h}, {"1x", h}, {"has space", h}, {"Ok", nil}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", bad.name)
				}
			}()
			r.Register(bad.name, bad.h)
		}()
	}
}

func TestTaskDecodeAndFunc(t *testing.T) {
	task := Task{Activity: "Add", Input: []byte(`{"a":1,"b":2}`)}
	var in struct{ A, B int }
	if err := task.Decode(&in); err != nil || in.A != 1 || in.B != 2 {
		t.Fatalf("decode %+v %v", in, err)
	}
	add := Func(func(ctx context.Context, in struct{ A, B int }) (int, error) { return in.A + in.B, nil })
	if v, err := add(context.Background(), task); err != nil || v != 3 {
		t.Fatalf("add %v %v", v, err)
	}
	_, err := add(context.Background(), Task{Activity: "Add", Input: []byte(`"x"`)})
	if info := errorInfo(err, 1); info.Type != ErrTypeInvalidInput || info.Retryable {
		t.Fatalf("bad input: %+v", info)
	}
}

func TestHTTPHelpers(t *testing.T) {
	for code, want := range map[int]bool{400: false, 401: false, 404: false, 408: true, 409: false, 422: false, 429: true, 500: true, 502: true, 503: true, 301: false} {
		if retryableStatus(code) != want {
			t.Errorf("retryableStatus(%d) = %v", code, !want)
		}
	}
	if got := redact("https://user:pw@api.example.com:8443/v1/charge?key=secret#frag"); got != "https://api.example.com:8443/v1/charge" {
		t.Errorf("redact: %s", got)
	}
	if got := excerpt([]byte("  line1\nline2\r\n")); got != "line1 line2" {
		t.Errorf("excerpt: %q", got)
	}
	if got := excerpt(nil); got != "(empty body)" {
		t.Errorf("excerpt of nothing: %q", got)
	}
	if got := excerpt([]byte(strings.Repeat("x", 5000))); len(got) > bodyExcerptBytes {
		t.Errorf("excerpt of %d bytes", len(got))
	}
}
