package dsl

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decodeCases are JSON texts, well formed or not, whose decoding is easy
// to get wrong: escapes, surrogates, invalid bytes, number grammar and
// range, repeated keys, nesting, what may follow a value.
var decodeCases = []string{
	``, ` `, `null`, `true`, `false`, `nul`, `truex`, `tru`, ` true `, "\t\r\n1\n", `1 2`, `[] x`,
	`0`, `-0`, `-0.0`, `1`, `7`, `255`, `256`, `999`, `1000`, `-1`, `01`, `007`, `-`, `1.`, `.5`, `1.5`, `1e5`, `1E5`, `1e+5`, `1e-5`,
	`1e`, `1e+`, `2.5e-3`, `1e400`, `-1e400`, `1e-400`, `123456789012345678901234567890`, `0.1`, `5e-324`, `1.7976931348623157e308`, `+1`, `0x10`,
	`""`, `"a"`, `"é😀"`, `"\u00e9"`, `"\u00E9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`,
	`"\u12"`, `"\u12g4"`, `"\x"`, `"\"\\\/\b\f\n\r\t"`, `"<&>\u003c\u0026"`, "\"a\x01b\"", "\"\x7f\"", "\"\xff\"", "\"a\xffb\\n\"", "\"\xed\xa0\x80\"",
	"\"\xef\xbf\xbd\"", `"\u2028"`, `"abc`, `"abc\`, `"\`,
	`[]`, `[ ]`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `[1,2,3,4,5,6,7,8,9,10,11,12]`, `[[[]]]`, `[null,true,"x",{}]`, `[`,
	`{}`, `{ }`, `{"a":1}`, `{"a":1,"a":2}`, `{"b":1,"a":{"c":[1,{"d":null}]}}`, `{"a" : 1 , "b" : [ ] }`, `{"a":1,}`, `{a:1}`, `{"a"}`, `{"a":}`, `{"a":1`, `{"\u00e9":"\ud800"}`, `{1:2}`,
	`[1e400, 2]`, `{"a": 1e400, "b": 1}`,
}

func TestDecodeJSONIsUnmarshal(t *testing.T) {
	for _, c := range decodeCases {
		checkDecodeJSON(t, []byte(c))
	}
	deep := strings.Repeat("[", maxJSONDepth+10) + strings.Repeat("]", maxJSONDepth+10)
	checkDecodeJSON(t, []byte(deep))
	checkDecodeJSON(t, []byte(strings.Repeat("[", 20000)))
	// What the engine stores: EncodeJSON's text of varied values.
	for _, v := range jsonCases {
		raw, err := EncodeJSON(v)
		if err == nil {
			checkDecodeJSON(t, raw)
		}
	}
}

// checkDecodeJSON compares DecodeJSON with json.Unmarshal: the same value
// (its JSON text too, which tells -0 from 0), the same error.
func checkDecodeJSON(t *testing.T, raw []byte) {
	t.Helper()
	got, err := DecodeJSON(raw)
	var want any
	werr := json.Unmarshal(raw, &want)
	gt, _ := json.Marshal(got)
	wt, _ := json.Marshal(want)
	if !reflect.DeepEqual(got, want) || string(gt) != string(wt) || (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Errorf("DecodeJSON(%q) = %#v, %v; json.Unmarshal gives %#v, %v", raw, got, err, want, werr)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkDecodeJSON(t, raw)
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	raw := []byte(`{"discount":20,"discountTimeout":60,"bookingUrl":"https://example.com/book/user1","items":[1.5,"x",true,null]}`)
	b.Run("DecodeJSON", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = DecodeJSON(raw)
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var v any
			_ = json.Unmarshal(raw, &v)
		}
	})
}
