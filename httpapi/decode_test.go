package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSONDepthAndRange(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{deep(MaxJSONDepth), true},
		{deep(MaxJSONDepth + 1), false},
		{deep(10000), false},
		{`{"a":"` + strings.Repeat("[", 1000) + `"}`, true}, // brackets inside a string
		{`"\"[[[["`, true},
		{`1e308`, true},
		{`1e999999`, false},
		{`-1e400`, false},
		{`12345678901234567890123`, true},
	} {
		_, err := parseJSON([]byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("parseJSON(%.40q…): %v, want ok=%v", c.body, err, c.ok)
		}
		if err != nil {
			if code, _ := statusOf(err); code != 400 {
				t.Errorf("parseJSON(%.40q…): status %d", c.body, code)
			}
		}
	}
}

// FuzzDecode checks the API's input decoding on its own: a body it accepts
// is compact JSON that decodes as the engine reads it and still encodes
// when cairn wraps it in its own documents (work items, status payloads,
// history); a body it refuses gets a 400 or 413; instance ids it accepts
// keep every rule.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `[[[]]]`, `"x"`, `null`, ` `, "\xef\xbb\xbf{}", `1e999`, `{"a":`, "\"\xff\"",
		strings.Repeat("[", 300) + strings.Repeat("]", 300), `{"a":"[[[["}`, `"\\"`, `[1,2,,]`,
	} {
		f.Add([]byte(s), "id-1")
	}
	f.Add([]byte(`{}`), "a/b")
	f.Add([]byte(`{}`), strings.Repeat("é", 257))
	f.Add([]byte(`{}`), "@x")
	f.Add([]byte(`{}`), "a\u0085b")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		checkQuickJSON(t, body)
		out, err := parseJSON(body)
		if err != nil {
			if code, _ := statusOf(err); code != 400 && code != 413 {
				t.Fatalf("parseJSON(%q): status %d: %v", body, code, err)
			}
		} else if out != nil {
			if !json.Valid(out) {
				t.Fatalf("parseJSON(%q) = %q, not JSON", body, out)
			}
			var v any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("parseJSON(%q) = %q does not decode: %v", body, out, err)
			}
			wrapped, err := json.Marshal(map[string]any{"a": []any{map[string]json.RawMessage{"data": out}}})
			if err != nil || !json.Valid(wrapped) {
				t.Fatalf("parseJSON(%q) = %q cannot be embedded: %v", body, out, err)
			}
			var again any
			if err := json.Unmarshal(wrapped, &again); err != nil {
				t.Fatalf("parseJSON(%q): the embedding does not decode: %v", body, err)
			}
		}
		if err := checkInstanceID(id); err == nil {
			if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > MaxInstanceIDLen || id[0] == '@' ||
				strings.ContainsAny(id, "/\\#?") {
				t.Fatalf("checkInstanceID(%q) accepted a bad id", id)
			}
			for _, r := range id {
				if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
					t.Fatalf("checkInstanceID(%q) accepted a control character", id)
				}
			}
		} else if code, _ := statusOf(err); code != 400 {
			t.Fatalf("checkInstanceID(%q): status %d", id, code)
		}
	})
}

// checkQuickJSON holds quickJSON to decodeJSON: what it accepts, decodeJSON
// accepts too, with the same bytes.
func checkQuickJSON(t *testing.T, body []byte) {
	t.Helper()
	if !utf8.Valid(body) || tooDeep(body, MaxJSONDepth) >= 0 {
		return // parseJSON refuses these before either runs
	}
	quick, ok := quickJSON(body)
	if !ok {
		return
	}
	want, err := decodeJSON(body)
	if err != nil {
		t.Fatalf("quickJSON(%q) accepts what decodeJSON refuses: %v", body, err)
	}
	if want == nil {
		want = json.RawMessage("null")
	}
	if string(quick) != string(want) {
		t.Fatalf("quickJSON(%q) = %q, decodeJSON = %q", body, quick, want)
	}
}

func TestQuickJSONIsDecode(t *testing.T) {
	big := strings.Repeat("9", maxPlainNumber)
	for _, c := range []struct {
		body  string
		quick bool // quickJSON takes it
	}{
		{`"user1"`, true},
		{`true`, true},
		{`null`, true},
		{` { "a" : [ 1 , -2.5 , "x y" ] }` + "\n", true},
		{`{"a":"b\\\" c","d":{}}`, true},
		{"\t[\r\n]", true},
		{`"tab\tin a string"`, true},
		{big, true},
		{"-" + big[1:], true},
		{big + "9", false},
		{`[` + big + `9]`, false},
		{`1e3`, false},
		{`[1E-3]`, false},
		{`{"a":`, false},
		{`[1,2,,]`, false},
		{`"\u2028<&>"`, true},
	} {
		_, ok := quickJSON([]byte(c.body))
		if ok != c.quick {
			t.Errorf("quickJSON(%.40q): %v, want %v", c.body, ok, c.quick)
		}
		checkQuickJSON(t, []byte(c.body))
	}
}
