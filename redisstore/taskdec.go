package redisstore

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairnhq/cairn/interpreter"
)

// decodeTask decodes a task entry (field j) into t, a zero ScheduleTask,
// as json.Unmarshal does. Entries in the form appendTask writes (its keys
// in its order, strings without escapes, integers) are read by a scan
// that allocates nothing: json.Unmarshal was a twentieth of cairn serve's
// CPU, in the activity runtime's reads. Any other form goes to
// json.Unmarshal, which also says what is wrong with a corrupt entry.
// FuzzDecodeTask holds the two to the same answers.
func decodeTask(j string, t *interpreter.ScheduleTask) error {
	if (&taskScan{s: j}).task(t) {
		return nil
	}
	*t = interpreter.ScheduleTask{}
	return json.Unmarshal(stringBytes(j), t)
}

// taskScan reads appendTask's form of a task; each method reports false
// at the first byte it does not expect, and the caller then decodes with
// json.Unmarshal instead.
type taskScan struct {
	s string
	i int
}

func (d *taskScan) task(t *interpreter.ScheduleTask) bool {
	var attempt int64
	var input string
	ok := d.lit(`{"task":`) && d.str(&t.TaskID) &&
		d.lit(`,"instance":`) && d.str((*string)(&t.Instance)) &&
		d.lit(`,"activity":`) && d.str(&t.Activity) &&
		d.lit(`,"input":`) && d.raw(&input) &&
		d.lit(`,"attempt":`) && d.int(&attempt) &&
		d.lit(`,"step":`) && d.str((*string)(&t.StepID)) &&
		d.lit(`,"def":`) && d.str(&t.DefHash) &&
		d.lit(`,"workflow":`) && d.str(&t.Workflow) &&
		d.lit(`,"queue":`) && d.str(&t.Queue) &&
		d.duration(`,"timeout":`, &t.Timeout) &&
		d.duration(`,"scheduleToStart":`, &t.ScheduleToStart) &&
		d.duration(`,"heartbeat":`, &t.Heartbeat)
	if ok && strings.HasPrefix(d.s[d.i:], `,"trace":`) {
		ok = d.lit(`,"trace":`) && d.str(&t.Trace)
	}
	if !ok || d.s[d.i:] != "}" || attempt != int64(int(attempt)) {
		return false
	}
	t.Input, t.Attempt = []byte(input), int(attempt) // a copy: a view would let a write to Input change a string
	return true
}

func (d *taskScan) lit(l string) bool {
	if !strings.HasPrefix(d.s[d.i:], l) {
		return false
	}
	d.i += len(l)
	return true
}

// str reads a string with no escape, no control character and valid
// UTF-8 (json.Unmarshal would replace invalid bytes), as a view of s.
func (d *taskScan) str(v *string) bool {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return false
	}
	n := strings.IndexByte(d.s[d.i+1:], '"')
	if n < 0 {
		return false
	}
	w := d.s[d.i+1 : d.i+1+n]
	for k := 0; k < len(w); k++ {
		if c := w[k]; c == '\\' || c < 0x20 {
			return false
		}
	}
	if !utf8.ValidString(w) {
		return false
	}
	*v = w
	d.i += n + 2
	return true
}

// int reads an integer: an optional minus, then 0 or digits not starting
// with 0, that fits an int64.
func (d *taskScan) int(v *int64) bool {
	k := d.i
	if k < len(d.s) && d.s[k] == '-' {
		k++
	}
	first := k
	for k < len(d.s) && d.s[k] >= '0' && d.s[k] <= '9' {
		k++
	}
	if k == first || (d.s[first] == '0' && k > first+1) {
		return false
	}
	if k < len(d.s) && (d.s[k] == '.' || d.s[k] == 'e' || d.s[k] == 'E') {
		return false
	}
	n, err := strconv.ParseInt(d.s[d.i:k], 10, 64)
	if err != nil {
		return false
	}
	*v, d.i = n, k
	return true
}

// duration reads the optional member key: an integer of nanoseconds.
func (d *taskScan) duration(key string, v *time.Duration) bool {
	if !strings.HasPrefix(d.s[d.i:], key) {
		return true
	}
	d.i += len(key)
	var n int64
	if !d.int(&n) {
		return false
	}
	*v = time.Duration(n)
	return true
}

// raw reads one JSON value, starting at once (no space before it), and
// checks it is valid JSON.
func (d *taskScan) raw(v *string) bool {
	end := valueEnd(d.s, d.i)
	if end < 0 || !json.Valid(stringBytes(d.s[d.i:end])) {
		return false
	}
	*v = d.s[d.i:end]
	d.i = end
	return true
}

// valueEnd returns where the JSON value starting at s[i] ends, or -1 when
// s has no such end; json.Valid judges what it spans.
func valueEnd(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '{', '[', '"':
	case ' ', '\t', '\r', '\n', ',', ':', '}', ']':
		return -1
	default: // a number, true, false or null: up to the next delimiter
		for i < len(s) && !strings.ContainsRune(" \t\r\n,:{}[]\"", rune(s[i])) {
			i++
		}
		return i
	}
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			if i >= len(s) {
				return -1
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
