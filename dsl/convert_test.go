package dsl

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

func TestToDuration(t *testing.T) {
	good := map[any]time.Duration{
		"60s": time.Minute, "1h30m": 90 * time.Minute, " 5m ": 5 * time.Minute, "0": 0,
		90.0: 90 * time.Second, 1.5: 1500 * time.Millisecond, 3: 3 * time.Second, int64(2): 2 * time.Second,
	}
	for in, want := range good {
		if got, err := ToDuration(in); err != nil || got != want {
			t.Errorf("ToDuration(%#v) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"5 minutes", "-5s", -1.0, "", nil, true, 1e300, "1000000h", []any{}} {
		if got, err := ToDuration(in); err == nil {
			t.Errorf("ToDuration(%#v) = %v, want an error", in, got)
		}
	}
}

func TestToTime(t *testing.T) {
	want := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	for _, in := range []any{"2025-06-01T09:00:00Z", "2025-06-01T11:00:00+02:00", "2025-06-01T09:00:00.000Z", want} {
		if got, err := ToTime(in); err != nil || !got.Equal(want) {
			t.Errorf("ToTime(%#v) = %v, %v", in, got, err)
		}
	}
	for _, in := range []any{"2025-06-01", "tomorrow", 1717232400.0, nil} {
		if _, err := ToTime(in); err == nil {
			t.Errorf("ToTime(%#v): want an error", in)
		}
	}
}

func TestStatusSize(t *testing.T) {
	cases := []struct {
		v    any
		want int
	}{
		{nil, 8},                       // null
		{"a", 6},                       // "a"
		{"<&>", 10},                    // not escaped as \u003c
		{"é", 6},                       // one UTF-16 unit
		{"😀", 8},                       // a surrogate pair: two units
		{map[string]any{"a": 1.0}, 14}, // {"a":1}
	}
	for _, c := range cases {
		if got, err := StatusSize(c.v); err != nil || got != c.want {
			t.Errorf("StatusSize(%#v) = %d, %v; want %d", c.v, got, err, c.want)
		}
	}
	// The limit itself: a string of n characters is (n+2)*2 bytes.
	at := strings.Repeat("x", MaxStatusBytes/2-2)
	if n, _ := StatusSize(at); n != MaxStatusBytes {
		t.Errorf("size %d, want exactly %d", n, MaxStatusBytes)
	}
	if _, err := StatusSize(func() {}); err == nil {
		t.Errorf("a func has no JSON size")
	}
}

func TestStatusSizeLintBoundary(t *testing.T) {
	// {"t":"xxx"} is 8 characters plus the string.
	mk := func(n int) string {
		return "name: X\nsteps:\n  - setStatus: {t: " + strings.Repeat("x", n) + "}\n"
	}
	limit := MaxStatusBytes/2 - 8
	parseOK(t, mk(limit))
	is := parseIssues(t, mk(limit+1))
	if is[0].Code != CodeStatusTooLarge || is[0].Pos != (Pos{3, 16}) {
		t.Errorf("got %v", is)
	}
}

func TestRetryDelay(t *testing.T) {
	wf := parseOK(t, "name: X\nactivities:\n  A: {retry: {maxAttempts: 5, firstInterval: 1s, backoff: 3, maxInterval: 10s}}\nsteps:\n  - activity: A\n")
	r := wf.Activities["A"].Retry
	want := []time.Duration{time.Second, 3 * time.Second, 9 * time.Second, 10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := r.Delay(n); got != w {
			t.Errorf("Delay(%d) = %v, want %v", n, got, w)
		}
	}
	if r.MaxAttempts != 5 {
		t.Errorf("MaxAttempts = %d", r.MaxAttempts)
	}
	def := parseOK(t, "name: X\nactivities:\n  A: {retry: {}}\nsteps:\n  - activity: A\n").Activities["A"].Retry
	if def.MaxAttempts != 3 || def.FirstInterval != time.Second || def.Backoff != 2 {
		t.Errorf("defaults: %+v", def)
	}
}

// statusCases are values whose text differs with and without HTML
// escaping, or is escaped at all.
var statusCases = []any{
	nil, true, 0.0, -1.5, 1e21, 1e-7, 123456789.0, "", "a", "<&>", "a<b>c&d", `\u003c`, `\\u003c`, "\\", `"`,
	"\u2028\u2029", "\x00\x01\x1f\t\n\r\b\f", "\xff\xfe", "é😀", "\u003c\u003e\u0026",
	map[string]any{"<k>": "&", "a": []any{1.0, "<", map[string]any{}}, "b": []any{}, "c": nil},
	[]any{"\u2028", "😀<", false},
	map[string]any(nil), []any(nil),
	json.RawMessage("\"\u2028<\""), json.RawMessage(`"\u2028<"`), json.Number("12"), map[string]any{"raw": json.RawMessage(`{"x":"<"}`)},
	time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
}

// TestStatusJSON: one encoding gives json.Marshal's text and StatusSize's
// count.
func TestStatusJSON(t *testing.T) {
	for _, v := range statusCases {
		checkStatusJSON(t, v)
	}
	if _, _, err := StatusJSON(func() {}); err == nil {
		t.Errorf("a func has no JSON")
	}
	if _, _, err := StatusJSON(map[string]any{"x": math.NaN()}); err == nil {
		t.Errorf("NaN has no JSON")
	}
}

func checkStatusJSON(t *testing.T, v any) {
	t.Helper()
	raw, size, err := StatusJSON(v)
	wantSize, werr := statusSizeRef(v)
	if n, err := StatusSize(v); n != wantSize || (err == nil) != (werr == nil) {
		t.Errorf("StatusSize(%#v) = %d, %v; want %d, %v", v, n, err, wantSize, werr)
	}
	wantRaw, _ := json.Marshal(v)
	if err != nil || werr != nil || size != wantSize || string(raw) != string(wantRaw) {
		t.Errorf("StatusJSON(%#v) = %s, %d, %v; want %s, %d, %v", v, raw, size, err, wantRaw, wantSize, werr)
	}
}

func FuzzStatusJSON(f *testing.F) {
	for _, v := range statusCases {
		if s, ok := v.(string); ok {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkStatusJSON(t, s)
		checkStatusJSON(t, map[string]any{s: []any{s, 1.0}})
	})
}

// statusSizeRef is StatusSize by its definition: the encoder's text
// without HTML escapes, in UTF-16 units × 2.
func statusSizeRef(v any) (int, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return 0, err
	}
	return len(utf16.Encode([]rune(strings.TrimSuffix(buf.String(), "\n")))) * 2, nil
}
