package activity

import (
	"strings"
	"testing"
)

// An error's Data reaches the ErrorInfo as JSON, unless it is too large
// to keep or not JSON, which the message then says.
func TestErrorData(t *testing.T) {
	info := errorInfo(&Error{Type: "CardDeclined", Message: "no", Data: map[string]any{"limit": 100}}, 1)
	if info.Type != "CardDeclined" || info.Data != `{"limit":100}` || info.Message != "no" || !info.Retryable {
		t.Errorf("got %+v", info)
	}
	info = errorInfo(&Error{Type: "Big", Message: "no", Data: strings.Repeat("x", MaxErrorDataBytes)}, 1)
	if info.Data != "" || !strings.Contains(info.Message, "was dropped") {
		t.Errorf("large data: %+v", info.Message)
	}
	info = errorInfo(&Error{Type: "Odd", Message: "no", Data: func() {}}, 1)
	if info.Data != "" || !strings.Contains(info.Message, "not JSON") {
		t.Errorf("non-JSON data: %+v", info.Message)
	}
	if d := answerData(402, []byte("plain text")); d["body"] != "plain text" || d["status"] != 402 {
		t.Errorf("answer data %v", d)
	}
	if d := answerData(500, []byte(strings.Repeat("x", MaxErrorDataBytes))); len(d) != 1 {
		t.Errorf("a large answer body is kept: %d fields", len(d))
	}
}
