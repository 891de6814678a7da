package activity

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cairnhq/cairn/interpreter"
)

// Error types the runtime reports (interpreter.ErrorInfo.Type, and
// error.type in a step's onError).
const (
	// ErrTypeFailed: a handler returned an error that is not an *Error.
	ErrTypeFailed = interpreter.ErrTypeActivity // "ActivityFailed"
	// ErrTypeTimeout: the task's timeout (or an http binding's) passed.
	ErrTypeTimeout = interpreter.ErrTypeActTimeout // "ActivityTimeout"
	// ErrTypePanic: a handler panicked.
	ErrTypePanic = "ActivityPanic"
	// ErrTypeHTTP: an http binding's server answered with a non-2xx status.
	ErrTypeHTTP = "HTTPError"
	// ErrTypeNetwork: an http binding's request got no answer.
	ErrTypeNetwork = "NetworkError"
	// ErrTypeExpression: an expression (an expr binding, an http header)
	// failed to evaluate.
	ErrTypeExpression = interpreter.ErrTypeExpression // "ExpressionError"
	// ErrTypeInvalidInput: the input does not fit the handler (Func).
	ErrTypeInvalidInput = "InvalidInput"
	// ErrTypeInvalidResult: the result is not JSON or exceeds MaxResultBytes.
	ErrTypeInvalidResult = "InvalidResult"
	// ErrTypeNotRegistered: a go-bound activity has no handler in this
	// process (retryable: another process may have one).
	ErrTypeNotRegistered = "HandlerNotFound"
	// ErrTypeDefinition: the task's workflow definition is gone.
	ErrTypeDefinition = interpreter.ErrTypeDefinition // "DefinitionError"
)

// maxMessageBytes bounds an error message kept in an instance.
const maxMessageBytes = 4096

// Error is an activity failure with a type and a retry decision. A handler
// may return one (or wrap one) to choose what the workflow sees in
// error.type and whether the retry policy applies.
type Error struct {
	Type    string // default ErrTypeFailed
	Message string // default Cause's message
	// NonRetryable stops retries: the step fails (or runs its onError)
	// at once, whatever its retry policy.
	NonRetryable bool
	Cause        error
	// Data is any JSON value carried with the error (error.data in the
	// workflow's handler): fail()'s third argument, an http answer's
	// status and body. It is dropped, and the message says so, when its
	// JSON is longer than MaxErrorDataBytes.
	Data any
}

// MaxErrorDataBytes bounds an error's Data, which the instance keeps in
// its history and hands to its handler.
const MaxErrorDataBytes = 64 << 10

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Cause != nil {
		msg = e.Cause.Error()
	}
	return e.typ() + ": " + msg
}

func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) typ() string {
	if e.Type == "" {
		return ErrTypeFailed
	}
	return e.Type
}

// NonRetryable marks err as final: the workflow's retry policy does not
// retry it. It keeps the type of an *Error that err is or wraps. It
// returns nil for nil.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.NonRetryable = true
		if c.Message == "" {
			c.Message = err.Error()
			if c.Cause != nil {
				c.Message = c.Cause.Error()
			}
		}
		c.Cause = err
		return &c
	}
	return &Error{Type: ErrTypeFailed, Message: err.Error(), NonRetryable: true, Cause: err}
}

// IsRetryable reports whether the workflow's retry policy may retry err:
// true unless err is or wraps an *Error marked NonRetryable.
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return !e.NonRetryable
	}
	return true
}

// errorInfo turns a handler's error into what the store records.
func errorInfo(err error, attempt int) interpreter.ErrorInfo {
	info := interpreter.ErrorInfo{Type: ErrTypeFailed, Message: err.Error(), Attempt: attempt, Retryable: true}
	var e *Error
	if errors.As(err, &e) {
		info.Type = e.typ()
		info.Retryable = !e.NonRetryable
		switch {
		case e.Message != "":
			info.Message = e.Message
		case e.Cause != nil:
			info.Message = e.Cause.Error()
		}
	}
	if e != nil && e.Data != nil {
		if raw, err := json.Marshal(e.Data); err != nil {
			info.Message += fmt.Sprintf(" (its data is not JSON: %v)", err)
		} else if len(raw) > MaxErrorDataBytes {
			info.Message += fmt.Sprintf(" (its data, %d bytes of JSON, was dropped: more than %d)", len(raw), MaxErrorDataBytes)
		} else {
			info.Data = interpreter.JSONText(raw)
		}
	}
	info.Message = truncate(info.Message, maxMessageBytes)
	return info
}

// truncate cuts s to at most n bytes of valid UTF-8, marking the cut.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
