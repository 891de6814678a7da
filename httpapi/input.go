package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/interpreter"
)

// MaxInstanceIDLen is the longest instance id accepted (DF's limit).
const MaxInstanceIDLen = 256

// checkInstanceID applies DF's instance id rules and names the one broken.
func checkInstanceID(id string) error {
	switch {
	case id == "":
		return badRequest("invalid-instance-id", "instance id must not be empty")
	case utf8.RuneCountInString(id) > MaxInstanceIDLen:
		return badRequest("invalid-instance-id", "instance id must be at most %d characters", MaxInstanceIDLen)
	case !utf8.ValidString(id):
		return badRequest("invalid-instance-id", "instance id must be valid UTF-8")
	case id[0] == '@':
		return badRequest("invalid-instance-id", "instance id must not start with '@' (reserved for entities)")
	}
	for _, r := range id {
		switch {
		case r == '/' || r == '\\' || r == '#' || r == '?':
			return badRequest("invalid-instance-id", "instance id must not contain %q", r)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return badRequest("invalid-instance-id", "instance id must not contain control characters (found U+%04X)", r)
		}
	}
	return nil
}

// instanceID reads and checks the :id path parameter.
func instanceID(c *gin.Context) (interpreter.InstanceID, error) {
	id := c.Param("id")
	if err := checkInstanceID(id); err != nil {
		return "", err
	}
	return interpreter.InstanceID(id), nil
}

// checkName checks an event name: non-empty, bounded, printable.
func checkEventName(name string) error {
	if name == "" || len(name) > 256 || !utf8.ValidString(name) {
		return badRequest("invalid-event-name", "event name must be 1 to 256 bytes of UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return badRequest("invalid-event-name", "event name must not contain control characters")
		}
	}
	return nil
}

// sizedRead bounds the Content-Length readBody allocates for up front: a
// client that declares more and sends nothing must not make the server
// hold that much, so longer bodies grow as they arrive (io.ReadAll).
const sizedRead = 64 << 10

// readBody reads the whole body, at most s.maxBody bytes (413 above).
func (s *server) readBody(c *gin.Context) ([]byte, error) {
	n := c.Request.ContentLength
	if n > s.maxBody {
		return nil, s.bodyError(&http.MaxBytesError{Limit: s.maxBody})
	}
	body := c.Request.Body
	if n >= 0 && n <= sizedRead {
		// The usual body, small and of a declared length, is read into
		// one buffer of that length (one byte more, to see its end),
		// instead of io.ReadAll's growing one and a MaxBytesReader: two
		// allocations and 512 bytes or more per start and raise. One
		// longer than declared goes on the general way below, what was
		// read included, so the limit holds for it as for any other.
		buf := make([]byte, n+1)
		got := 0
		for got < len(buf) {
			m, err := body.Read(buf[got:])
			got += m
			if err == io.EOF && got < len(buf) {
				return buf[:got], nil
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, s.bodyError(err)
			}
		}
		body = prefixed{io.MultiReader(bytes.NewReader(buf), body), body}
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, body, s.maxBody))
	if err != nil {
		return nil, s.bodyError(err)
	}
	return b, nil
}

// prefixed is a body with what was read of it put back in front.
type prefixed struct {
	io.Reader
	io.Closer
}

// bodyError is readBody's answer to err, met reading the body: 413 when
// it passed the limit, else 400.
func (s *server) bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("the request body exceeds the limit of %s: %w", fmtSize(s.maxBody), err)
	}
	return badRequest("bad-body", "reading the request body: %v", err)
}

// readJSON reads an optional JSON body: empty = nil (JSON null). It
// returns the value compacted, or a 400 that says where the JSON breaks.
func (s *server) readJSON(c *gin.Context) (json.RawMessage, error) {
	b, err := s.readBody(c)
	if err != nil {
		return nil, err
	}
	return parseJSON(b)
}

func parseJSON(b []byte) (json.RawMessage, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a UTF-8 BOM some clients send
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	if !utf8.Valid(b) {
		off := invalidUTF8Offset(b)
		line, col := lineCol(b, off)
		return nil, badRequest("invalid-utf8", "the body is not valid UTF-8 at line %d, column %d (byte offset %d)", line, col, off)
	}
	if off := tooDeep(b, MaxJSONDepth); off >= 0 {
		line, col := lineCol(b, off)
		return nil, badRequest("invalid-json", "the JSON is nested more than %d levels deep at line %d, column %d (byte offset %d)", MaxJSONDepth, line, col, off)
	}
	if out, ok := quickJSON(b); ok {
		if string(out) == "null" {
			return nil, nil
		}
		return out, nil
	}
	return decodeJSON(b)
}

// maxPlainNumber: a JSON number without an exponent and shorter than
// this fits a float64 (whose largest is about 1.8e308), so quickJSON
// need not parse it.
const maxPlainNumber = 308

// quickJSON accepts b, compacted, without decoding it, when it is valid
// JSON whose numbers all fit a float64 at a glance (no exponent, at most
// maxPlainNumber characters): the usual body, such as an id or a small
// object, then costs two scans instead of two decodes and a compaction,
// and a copy only when it holds whitespace to drop. false = decodeJSON
// judges it and words the refusal. TestQuickJSONIsDecode holds the two to
// the same answers.
func quickJSON(b []byte) (json.RawMessage, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	inString, escaped, spaced := false, false, false
	num := -1 // where the number being read began
	for i, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if num >= 0 {
			if c == 'e' || c == 'E' {
				return nil, false
			}
			if c == '.' || c == '+' || c == '-' || ('0' <= c && c <= '9') {
				continue
			}
			if i-num > maxPlainNumber {
				return nil, false
			}
			num = -1
		}
		switch {
		case c == '"':
			inString = true
		case c == '-' || ('0' <= c && c <= '9'):
			num = i
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			spaced = true
		}
	}
	if num >= 0 && len(b)-num > maxPlainNumber {
		return nil, false
	}
	if !spaced {
		return b, true
	}
	// Drop the whitespace outside strings, as json.Compact does.
	out := make([]byte, 0, len(b))
	inString, escaped = false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		out = append(out, c)
	}
	return out, true
}

// decodeJSON is parseJSON's careful path: it decodes b to find where and
// why it is refused, and compacts what it accepts.
func decodeJSON(b []byte) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// Offset counts the bytes read up to and including the bad one.
			off := max(int(se.Offset)-1, 0)
			line, col := lineCol(b, off)
			return nil, badRequest("invalid-json", "malformed JSON at line %d, column %d (byte offset %d): %v", line, col, off, se)
		}
		return nil, badRequest("invalid-json", "malformed JSON: %v", err)
	}
	// Every value must also decode as the engine will read it: a number
	// beyond float64 would otherwise turn into null there.
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			line, col := lineCol(b, int(te.Offset))
			return nil, badRequest("invalid-json", "at line %d, column %d: %s does not fit a 64-bit floating-point number", line, col, te.Value)
		}
		return nil, badRequest("invalid-json", "malformed JSON: %v", err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, badRequest("invalid-json", "malformed JSON: %v", err)
	}
	if out.String() == "null" {
		return nil, nil
	}
	return out.Bytes(), nil
}

// MaxJSONDepth bounds the nesting of a JSON body (inputs, event payloads,
// activity results). cairn embeds these values in its own JSON (work items,
// status payloads, history), which must stay within what encoding/json
// reads (10,000 levels); expressions handle at most 256 levels.
const MaxJSONDepth = 256

// tooDeep returns the offset of the first bracket that opens level
// max+1, or -1. It skips strings, so it needs no valid JSON to be safe.
func tooDeep(b []byte, max int) int {
	depth, inString, escaped := 0, false, false
	for i, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return i
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return -1
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// lineCol turns a byte offset into a 1-based line and column (in runes).
func lineCol(b []byte, off int) (int, int) {
	if off > len(b) {
		off = len(b)
	}
	line, col := 1, 1
	for _, r := range string(b[:off]) {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// requireJSONContent refuses a body whose Content-Type is not JSON, as DF
// does for raiseEvent (400).
func requireJSONContent(c *gin.Context) error {
	ct := c.GetHeader("Content-Type")
	if ct == "application/json" || ct == "application/json; charset=utf-8" {
		return nil // what clients send, without ParseMediaType's map
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return badRequest("json-required", "only application/json request content is supported (Content-Type was %q)", ct)
	}
	return nil
}

// maxScannedParams: a query of more parameters than this is left to gin's
// map of it, which then applies url.ParseQuery's bound on their number
// (10,000 unless GODEBUG urlmaxqueryparams sets it below this).
const maxScannedParams = 32

// getQuery is c.GetQuery without gin's map of the whole query (three
// allocations and more per request that has one): the first value of
// name as url.ParseQuery reads it, from a scan of the raw query. A pair
// that ParseQuery drops (one with a semicolon, or a bad escape in its key
// or value) is skipped as it is. TestGetQueryIsParseQuery holds the two
// to the same answers.
func getQuery(c *gin.Context, name string) (string, bool) {
	raw := c.Request.URL.RawQuery
	if raw == "" {
		return "", false
	}
	if strings.Count(raw, "&") >= maxScannedParams {
		return c.GetQuery(name)
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") { // else k is its own unescaping
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		} else if k != name {
			continue
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			return uv, true
		}
	}
	return "", false
}

// query is c.Query through getQuery.
func query(c *gin.Context, name string) string {
	v, _ := getQuery(c, name)
	return v
}

// boolQuery reads a true/false query parameter.
func boolQuery(c *gin.Context, name string, def bool) (bool, error) {
	v, ok := getQuery(c, name)
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("bad-parameter", "%s must be true or false, not %q", name, v)
	}
	return b, nil
}

// timeQuery reads an RFC 3339 (ISO 8601) time query parameter; zero when
// absent.
func timeQuery(c *gin.Context, name string) (time.Time, error) {
	v := query(c, name)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badRequest("bad-parameter", "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", name, v)
}

// statusesQuery reads runtimeStatus=Running,Pending.
func statusesQuery(c *gin.Context) ([]interpreter.RuntimeStatus, error) {
	var out []interpreter.RuntimeStatus
	for _, v := range c.QueryArray("runtimeStatus") {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			st, ok := interpreter.ParseRuntimeStatus(name)
			if !ok {
				return nil, badRequest("bad-parameter", "runtimeStatus: unknown status %q (Pending, Running, Suspended, Completed, Failed, Terminated)", name)
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// secondsQuery reads a duration given in (possibly fractional) seconds.
func secondsQuery(c *gin.Context, name string) (time.Duration, bool, error) {
	v := query(c, name)
	if v == "" {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 24*3600 {
		return 0, false, badRequest("bad-parameter", "%s must be a number of seconds between 0 and 86400, not %q", name, v)
	}
	return time.Duration(f * float64(time.Second)), true, nil
}

func fmtSize(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
