package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// apiError is an error the API reports as is: status, stable code, message.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, code, fmt.Sprintf(format, args...)}
}

// errorBody is every error response: {"error": code, "message": text}, plus
// the located problems of a rejected definition.
type errorBody struct {
	Error   string     `json:"error"`
	Message string     `json:"message"`
	Issues  dsl.Issues `json:"issues,omitempty"`
}

// statusOf maps an error to its HTTP status and error code. It is the only
// place that translates store and interpreter errors for clients.
func statusOf(err error) (int, string) {
	var (
		ae  *apiError
		mbe *http.MaxBytesError
		iss dsl.Issues
	)
	switch {
	case errors.As(err, &ae):
		return ae.Status, ae.Code
	case errors.Is(err, interpreter.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "payload-too-large"
	case errors.As(err, &iss):
		return http.StatusUnprocessableEntity, "invalid-workflow"
	case errors.Is(err, interpreter.ErrInstanceFinished):
		// A worker's task whose instance ended: it should stop.
		return http.StatusGone, "instance-finished"
	case errors.Is(err, interpreter.ErrNotFound):
		return http.StatusNotFound, "not-found"
	case errors.Is(err, interpreter.ErrInvalid):
		return http.StatusBadRequest, "bad-request"
	case errors.Is(err, interpreter.ErrAlreadyRunning):
		return http.StatusConflict, "already-running"
	case errors.Is(err, interpreter.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, interpreter.ErrFinished):
		return http.StatusGone, "finished"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout"
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this.
		return 499, "canceled"
	}
	return http.StatusInternalServerError, "internal"
}

// fail writes err as the JSON error response and stops the handler chain.
// Messages of unexpected errors are logged, not sent.
func (s *server) fail(c *gin.Context, err error) {
	status, code := statusOf(err)
	body := errorBody{Error: code, Message: err.Error()}
	var iss dsl.Issues
	if errors.As(err, &iss) {
		body.Message = fmt.Sprintf("the workflow has %d problem(s)", len(iss))
		body.Issues = iss
	}
	switch {
	case status == http.StatusServiceUnavailable:
		// The store is out of reach or slow: say so without its address,
		// and when to try again.
		s.log.Warn("store unavailable", "method", c.Request.Method, "path", c.Request.URL.Path, "code", code, "err", err)
		if code != "not-ready" {
			body.Message = unavailableMessage(code)
		}
		c.Header("Retry-After", "1")
	case status >= 500:
		s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err)
		if code == "internal" {
			body.Message = "internal error"
		}
	}
	c.Abort()
	writeJSON(c, status, body)
}

func unavailableMessage(code string) string {
	if code == "timeout" {
		return "the store did not answer in time; retry later"
	}
	return "the store cannot be reached; retry later"
}

// recovery turns a panic in a handler into a logged JSON 500.
func (s *server) recovery(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		s.log.Error("panic serving request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		c.Abort()
		if !c.Writer.Written() {
			writeJSON(c, http.StatusInternalServerError, errorBody{Error: "internal", Message: "internal error"})
		}
	}()
	c.Next()
}

// hashKeys keeps only digests of the API keys, so comparisons take the same
// time whatever the length or content of the key sent.
func hashKeys(keys []string) [][32]byte {
	var out [][32]byte
	for _, k := range keys {
		if k != "" {
			out = append(out, sha256.Sum256([]byte(k)))
		}
	}
	return out
}

// openPath is the one path served without a key: liveness probes must
// work without credentials, and it tells nothing about the store.
const openPath = "/healthz"

// openUI reports whether p is one of the progress pages or their assets,
// which hold no data: everything under /ui but /ui/api/.
func (s *server) openUI(p string) bool {
	if !s.ui {
		return false
	}
	p = path.Clean(p)
	return (p == "/ui" || strings.HasPrefix(p, "/ui/")) && p != "/ui/api" && !strings.HasPrefix(p, "/ui/api/")
}

// auth accepts a key from Authorization: Bearer, x-functions-key or ?code=.
// It guards every path but /healthz and the progress pages (openUI),
// unknown ones included (so routes cannot be probed without a key). With no
// key configured every request passes.
func (s *server) auth(c *gin.Context) {
	if len(s.keys) == 0 || c.Request.URL.Path == openPath || s.openUI(c.Request.URL.Path) {
		return
	}
	key := ""
	if h := c.GetHeader("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		key = strings.TrimSpace(h[7:])
	} else if h := c.GetHeader("x-functions-key"); h != "" {
		key = h
	} else {
		key = query(c, "code")
	}
	if key == "" {
		s.fail(c, &apiError{http.StatusUnauthorized, "unauthorized", "an API key is required (Authorization: Bearer, x-functions-key or ?code=)"})
		return
	}
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for i := range s.keys {
		ok |= subtle.ConstantTimeCompare(sum[:], s.keys[i][:])
	}
	if ok != 1 {
		s.fail(c, &apiError{http.StatusUnauthorized, "unauthorized", "the API key is not valid"})
		return
	}
}

// writeJSON writes v with status, without HTML escaping so URLs and
// messages stay readable.
func writeJSON(c *gin.Context, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only our own types get here
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	writeBody(c, status, buf.Bytes())
}

// jsonContentType is every JSON answer's Content-Type, one slice for all:
// header values are only replaced or appended to, never written in place,
// and an append to a full slice copies it.
var jsonContentType = []string{"application/json; charset=utf-8"}

// writeBody writes b, a JSON document, with status, as c.Data does but
// without a new Content-Type slice per answer.
func writeBody(c *gin.Context, status int, b []byte) {
	h := c.Writer.Header()
	if len(h["Content-Type"]) == 0 {
		h["Content-Type"] = jsonContentType
	}
	c.Status(status)
	if status < 200 || status == http.StatusNoContent || status == http.StatusNotModified {
		c.Writer.WriteHeaderNow() // no body allowed
		return
	}
	_, _ = c.Writer.Write(b)
}

// bufPool keeps the buffers answers are encoded into. The writer copies
// what it is given, so a buffer is free again once written.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf: a buffer grown past it by one large answer goes to the GC
// instead of staying pinned in the pool.
const maxPooledBuf = 64 << 10

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		bufPool.Put(b)
	}
}

func marshal(v any) ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(sb.String(), "\n")), nil
}
