package redisstore

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// History encoding. Every instance keeps its history in Redis, so its
// size is most of an instance's memory: one list element per transition,
// a JSON array [t, line, line...] where t is the first line's time (unix
// ms) and each line is [type, dt, step, name, data, attempt, reason] with
// the type shortened by histCodes, dt its time minus t, and trailing empty
// values left out. A ReserveTicket history takes about 560 bytes this way,
// 900 with one JSON object per line.

// histCodes shortens the interpreter's history event types; a type not
// listed is stored as it is.
var histCodes = map[string]string{
	"ExecutionScheduled": "ESc", "ExecutionStarted": "ES", "ExecutionCompleted": "EC",
	"ExecutionFailed": "EF", "ExecutionTerminated": "ET", "ExecutionSuspended": "ESu",
	"ExecutionResumed": "ER", "ContinuedAsNew": "CAN", "HistoryTruncated": "HT",
	"TaskScheduled": "TS", "TaskCompleted": "TC", "TaskFailed": "TF",
	"TimerCreated": "TmC", "TimerFired": "TmF", "EventRaised": "EvR",
	"CustomStatusUpdated": "CS", "ErrorHandled": "EH", "BranchFailed": "BF",
	"ChildScheduled": "CSc", "ChildCompleted": "CC", "ChildFailed": "CF", "ChildTerminated": "CT",
}

// histNames is histCodes reversed.
var histNames = func() map[string]string {
	m := make(map[string]string, len(histCodes))
	for name, code := range histCodes {
		m[code] = name
	}
	return m
}()

// encodeHistory encodes the history lines of one transition as one
// history list element.
func encodeHistory(hs []interpreter.HistoryEvent) (string, error) {
	b, err := appendHistory(make([]byte, 0, historySize(hs)), hs)
	if err != nil {
		return "", err
	}
	return bytesString(b), nil
}

// historySize is about the size of the lines' history element.
func historySize(hs []interpreter.HistoryEvent) int {
	n := 16
	for i := range hs {
		n += 24 + len(hs[i].Type) + len(hs[i].StepID) + len(hs[i].Name) + len(hs[i].Data) + len(hs[i].Reason)
	}
	return n
}

// appendHistory appends the history list element of the lines to dst.
// Payloads are kept byte for byte as the interpreter wrote them: no HTML
// escaping (it would also grow them), as an Encoder with
// SetEscapeHTML(false) writes them (TestHistoryEncodingIsEncoder).
func appendHistory(dst []byte, hs []interpreter.HistoryEvent) ([]byte, error) {
	if len(hs) == 0 {
		return dst, errors.New("no history lines")
	}
	t := ms(hs[0].Timestamp)
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, t, 10)
	for i := range hs {
		h := &hs[i]
		typ := h.Type
		if c, ok := histCodes[typ]; ok {
			typ = c
		}
		// Trailing empty values are left out: most lines need three or
		// four. n counts the fields written.
		n := 7
		switch {
		case h.Reason != "":
		case h.Attempt != 0:
			n = 6
		case len(h.Data) > 0:
			n = 5
		case h.Name != "":
			n = 4
		case h.StepID != "":
			n = 3
		case ms(h.Timestamp) != t:
			n = 2
		default:
			n = 1
		}
		dst = append(dst, ",["...)
		dst = dsl.AppendJSONString(dst, typ, false)
		if n > 1 {
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, ms(h.Timestamp)-t, 10)
		}
		if n > 2 {
			dst = append(dst, ',')
			dst = dsl.AppendJSONString(dst, string(h.StepID), false)
		}
		if n > 3 {
			dst = append(dst, ',')
			dst = dsl.AppendJSONString(dst, h.Name, false)
		}
		if n > 4 {
			dst = append(dst, ',')
			var data json.RawMessage // null
			if len(h.Data) > 0 {
				data = h.Data
			}
			var err error
			if dst, err = appendRawJSON(dst, data, false); err != nil {
				return dst, err
			}
		}
		if n > 5 {
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, int64(h.Attempt), 10)
		}
		if n > 6 {
			dst = append(dst, ',')
			dst = dsl.AppendJSONString(dst, h.Reason, false)
		}
		dst = append(dst, ']')
	}
	return append(dst, ']'), nil
}

// decodeHistory appends the lines of one history list element to out.
func decodeHistory(out []interpreter.HistoryEvent, s string) ([]interpreter.HistoryEvent, error) {
	var elem []json.RawMessage
	if err := json.Unmarshal([]byte(s), &elem); err != nil {
		return out, err
	}
	if len(elem) < 2 {
		return out, errors.New("history entry without lines")
	}
	t, err := strconv.ParseInt(string(elem[0]), 10, 64)
	if err != nil {
		return out, errors.New("history entry without a time")
	}
	for _, raw := range elem[1:] {
		var f []json.RawMessage
		if err := json.Unmarshal(raw, &f); err != nil || len(f) == 0 {
			return out, errors.New("malformed history line")
		}
		var h interpreter.HistoryEvent
		var dt int64
		var step string
		for i, v := range f {
			var err error
			switch i {
			case 0:
				err = json.Unmarshal(v, &h.Type)
				if name, ok := histNames[h.Type]; ok {
					h.Type = name
				}
			case 1:
				err = json.Unmarshal(v, &dt)
			case 2:
				err = json.Unmarshal(v, &step)
				h.StepID = dsl.StepID(step)
			case 3:
				err = json.Unmarshal(v, &h.Name)
			case 4:
				if string(v) != "null" {
					h.Data = v
				}
			case 5:
				err = json.Unmarshal(v, &h.Attempt)
			case 6:
				err = json.Unmarshal(v, &h.Reason)
			}
			if err != nil {
				return out, errors.New("malformed history line")
			}
		}
		h.Timestamp = fromMS(t + dt)
		out = append(out, h)
	}
	return out, nil
}
