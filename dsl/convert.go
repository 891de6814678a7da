package dsl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxStatusBytes is the largest custom status: its JSON text, counted as
// UTF-16 code units × 2 as Durable Functions does.
const MaxStatusBytes = 16384

// maxDuration is the longest duration cairn accepts anywhere; it keeps
// seconds×1e9 far from overflowing time.Duration.
const maxDuration = 10 * 365 * 24 * time.Hour

// ToDuration converts a duration as written in a workflow, or as computed by
// an expression, to a time.Duration: a Go duration string ("60s", "1h30m")
// or a number of seconds. Negative, non-finite and overlong durations are
// errors.
func ToDuration(v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		s := strings.TrimSpace(x)
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("'%s' is not a duration: write it like 90s, 5m or 1h30m, or as a number of seconds", x)
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x > maxDuration.Seconds() {
			return 0, fmt.Errorf("%v seconds is not a usable duration", x)
		}
		d = time.Duration(x * float64(time.Second))
	case int:
		return ToDuration(float64(x))
	case int64:
		return ToDuration(float64(x))
	case time.Duration:
		d = x
	default:
		return 0, fmt.Errorf("a duration must be a string like 90s or a number of seconds, not %s", typeName(v))
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %s is negative", d)
	}
	if d > maxDuration {
		return 0, fmt.Errorf("duration %s is longer than the limit of %s", d, maxDuration)
	}
	return d, nil
}

// ToTime converts an RFC 3339 time ("2025-06-01T09:00:00Z") to a time.Time.
func ToTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(x))
		if err != nil {
			return time.Time{}, fmt.Errorf("'%s' is not an RFC 3339 time like 2025-06-01T09:00:00Z", x)
		}
		return t, nil
	case time.Time:
		return x, nil
	}
	return time.Time{}, fmt.Errorf("a time must be an RFC 3339 string, not %s", typeName(v))
}

// StatusSize is the size of a custom status as Durable Functions counts it:
// UTF-16 code units × 2 of its JSON text. HTML characters are not escaped,
// since the escaped forms (\u003c) would count a single '<' as six units.
func StatusSize(v any) (int, error) {
	// Plain values, which are what the engine sizes, from Marshal's text
	// in a pooled buffer; the rest through the encoder.
	bp := jsonBufs.Get().(*[]byte)
	raw, ok := appendJSON((*bp)[:0], v, 0)
	size := 0
	if ok {
		size = unescapedSize(raw)
	}
	if cap(raw) <= maxPooledJSON {
		*bp = raw
		jsonBufs.Put(bp)
	}
	if ok {
		return size, nil
	}
	se := statusEncoders.Get().(*statusEncoder)
	defer se.release()
	if err := se.enc.Encode(v); err != nil {
		return 0, fmt.Errorf("the status is not JSON: %w", err)
	}
	b := bytes.TrimSuffix(se.buf.Bytes(), []byte("\n"))
	if !utf8.Valid(b) {
		return 0, errors.New("the status is not valid UTF-8")
	}
	units := 0
	for _, r := range string(b) {
		if r >= 0x10000 {
			units += 2
		} else {
			units++
		}
	}
	return units * 2, nil
}

// statusEncoder is StatusSize's buffer and encoder, pooled: the engine
// sizes every status it sets. An Encoder keeps only its writer's errors,
// and a bytes.Buffer returns none, so one is as good as new once Reset.
type statusEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var statusEncoders = sync.Pool{New: func() any {
	se := &statusEncoder{}
	se.enc = json.NewEncoder(&se.buf)
	se.enc.SetEscapeHTML(false)
	return se
}}

// maxPooledStatus bounds the buffer kept for reuse: a status is at most
// 16 KB of UTF-16, and a rejected, larger value should not stay in memory.
const maxPooledStatus = 4 * MaxStatusBytes

func (se *statusEncoder) release() {
	if se.buf.Cap() > maxPooledStatus {
		return
	}
	se.buf.Reset()
	statusEncoders.Put(se)
}

// StatusJSON is a custom status's JSON text as json.Marshal writes it,
// which the engine stores, with its size as StatusSize counts it, from
// one encoding instead of two. Its errors are StatusSize's.
func StatusJSON(v any) (json.RawMessage, int, error) {
	if raw, ok := encodePlain(v); ok {
		return raw, unescapedSize(raw), nil
	}
	// A Marshaler's text is escaped differently with and without HTML
	// escaping (U+2028 is, too); only plain values are sized from
	// Marshal's text.
	size, err := StatusSize(v)
	if err != nil {
		return nil, 0, err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("the status is not JSON: %w", err)
	}
	return raw, size, nil
}

// unescapedSize is StatusSize of the value whose json.Marshal text is raw:
// the same text but for <, > and &, which Marshal writes as \u003c,
// \u003e and \u0026 (lower-case hex) and StatusSize counts as one unit.
// Marshal's text is valid UTF-8, invalid input having become U+FFFD.
func unescapedSize(raw []byte) int {
	units := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\' && i+5 < len(raw) && raw[i+1] == 'u' && raw[i+2] == '0' && raw[i+3] == '0' &&
			(raw[i+4] == '3' && (raw[i+5] == 'c' || raw[i+5] == 'e') || raw[i+4] == '2' && raw[i+5] == '6'):
			units++
			i += 6
		case c == '\\': // the escaped byte is ASCII: \\, \", \n, or the u of \uXXXX
			units += 2
			i += 2
		case c < utf8.RuneSelf:
			units++
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			units++
			if r >= 0x10000 {
				units++
			}
			i += n
		}
	}
	return units * 2
}
