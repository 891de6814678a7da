package redisstore

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// checkParseMeta: whenever parseMeta takes s, it gives what json.Unmarshal
// gives. It reports whether parseMeta took it.
func checkParseMeta(t *testing.T, s string) bool {
	t.Helper()
	var got, want meta
	if !parseMeta(s, &got) {
		return false
	}
	if err := json.Unmarshal([]byte(s), &want); err != nil {
		t.Errorf("parseMeta takes %s, json.Unmarshal refuses it: %v", s, err)
	} else if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\nparseMeta    %#v %#v\njson.Unmarshal %#v %#v", s, got, got.Pending, want, want.Pending)
	}
	return true
}

// populate sets every field of the struct v points to, recursively, to a
// value that is not zero, so json.Marshal writes every key.
func populate(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)))
		case f.Type() == reflect.TypeFor[*time.Time]():
			at := time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)
			f.Set(reflect.ValueOf(&at))
		case f.Kind() == reflect.String:
			f.SetString("v-" + strings.ToLower(v.Type().Field(i).Name))
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(int64(i + 1))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Type() == reflect.TypeFor[[]string]():
			f.Set(reflect.ValueOf([]string{"a", "b"}))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct:
			f.Set(reflect.New(f.Type().Elem()))
			populate(t, f.Elem())
		default:
			t.Fatalf("populate: field %s.%s of type %s: teach parseMeta (and this test) the new field",
				v.Type(), v.Type().Field(i).Name, f.Type())
		}
	}
}

// TestParseMetaKnowsEveryKey: meta with every field of its own and of
// Pending set is read by hand, not left to encoding/json. It fails when a
// field is added to either without teaching parseMeta its key.
func TestParseMetaKnowsEveryKey(t *testing.T) {
	var m meta
	populate(t, reflect.ValueOf(&m).Elem())
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !checkParseMeta(t, string(b)) {
		t.Fatalf("parseMeta leaves %s to encoding/json", b)
	}
}

func TestParseMetaIsUnmarshal(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", -7200))
	for _, m := range []meta{
		{},
		{Name: "Gate", Def: "abc", Created: 1767322245000, Updated: -1},
		{Name: "Gate", Pending: &interpreter.Pending{Kind: interpreter.WaitEvent, StepID: "steps[0]", Event: "Open"}},
		{Pending: &interpreter.Pending{Kind: "retry", Activity: "Charge", Attempt: 3, FirstAttempt: at, Deadline: &at, TimerID: "t1"}},
		{Pending: &interpreter.Pending{Kind: "event", Events: []string{}, Got: []string{"a"}, All: true}},
		{Pending: &interpreter.Pending{}},
	} {
		b, _ := json.Marshal(m)
		if !checkParseMeta(t, string(b)) {
			t.Errorf("parseMeta leaves %s to encoding/json", b)
		}
	}
	// What json.Marshal does not write, or escapes: left to encoding/json,
	// which reads or refuses it.
	for _, s := range []string{
		``, `{`, `{}x`, `{"n":"a"} `, ` {"n":"a"}`, `{"n" :"a"}`, `{"n":"a",}`, `{"N":"a"}`, `{"x":1}`,
		`{"n":null}`, `{"p":null}`, `{"c":01}`, `{"c":1.0}`, `{"c":1e3}`, `{"c":-}`, `{"c":99999999999999999999}`,
		`{"n":"a\"b"}`, `{"n":"\u003cb\u003e"}`, `{"n":"é"}`, "{\"n\":\"a\x01\"}", "{\"n\":\"\xff\"}",
		`{"p":{"all":tru}}`, `{"p":{"events":["a",]}}`, `{"p":{"until":"yesterday"}}`, `{"p":{"attempt":"1"}}`,
	} {
		if checkParseMeta(t, s) {
			t.Errorf("parseMeta took %q", s)
		}
	}
	// Taken: duplicate keys (the last wins, as with encoding/json).
	if !checkParseMeta(t, `{"n":"a","n":"b","p":{"events":["x"],"events":[]}}`) {
		t.Error("duplicate keys left to encoding/json")
	}
}

// TestParseMetaRandom: random metas, strings drawn from bytes JSON
// escapes or that are not ASCII among plain ones.
func TestParseMetaRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	alphabet := []byte("abcXYZ019-_.[]{}:, \"\\<>&\x00\x1f\x7f\xc3\xa9\xff")
	str := func() string {
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	strs := func() []string {
		if r.IntN(3) == 0 {
			return nil
		}
		out := make([]string, r.IntN(3))
		for i := range out {
			out[i] = str()
		}
		return out
	}
	taken := 0
	for range 3000 {
		m := meta{Name: str(), Def: str(), Created: r.Int64() - r.Int64(), Updated: r.Int64N(1 << 45)}
		if r.IntN(4) > 0 {
			at := time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).In(time.FixedZone("z", 60*(r.IntN(1440)-720)))
			m.Pending = &interpreter.Pending{
				Kind: interpreter.WaitKind(str()), StepID: dsl.StepID("s" + str()), Activity: str(), TaskID: str(), Attempt: r.IntN(5) - 1,
				Event: str(), Events: strs(), All: r.IntN(2) == 0, Got: strs(), TimerID: str(), Branches: r.IntN(3), Done: r.IntN(3),
				Child: interpreter.InstanceID(str()),
			}
			if r.IntN(2) == 0 {
				m.Pending.FirstAttempt = at
			}
			if r.IntN(2) == 0 {
				m.Pending.Deadline = &at
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if checkParseMeta(t, string(b)) {
			taken++
		}
		if t.Failed() {
			return
		}
	}
	if taken == 0 {
		t.Error("parseMeta took none of the random metas")
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add(`{"n":"Gate","d":"abc","c":1,"u":2,"p":{"kind":"event","step":"steps[0]","event":"Open","events":["a","b"],"all":true}}`)
	f.Add(`{"p":{"until":"2026-01-02T03:04:05.6+02:00","first":"2026-01-02T03:04:05Z","attempt":-1}}`)
	f.Fuzz(func(t *testing.T, s string) { checkParseMeta(t, s) })
}
