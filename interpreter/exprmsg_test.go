package interpreter

import (
	"encoding/json"
	"strings"
	"testing"
)

// A computed duration or time that is not one fails the step with a
// message naming the expression's text and its position in the file.
func TestComputedWaitErrorsNameTheExpression(t *testing.T) {
	h := newHarness(t, "ComputedWait", map[string]any{"timeout": "5 minutes"})
	h.wantStatus(StatusFailed)
	var info ErrorInfo
	if err := json.Unmarshal(h.st.Output, &info); err != nil {
		t.Fatal(err)
	}
	if info.Type != ErrTypeExpression || !strings.Contains(info.Message, `5:19: evaluating "input.timeout": `) || !strings.Contains(info.Message, "5 minutes") {
		t.Fatalf("got %+v", info)
	}

	h = newHarness(t, "ComputedWait", map[string]any{"timeout": "1s", "until": "next tuesday"})
	h.fireNext()
	h.wantStatus(StatusFailed)
	if err := json.Unmarshal(h.st.Output, &info); err != nil {
		t.Fatal(err)
	}
	if info.Type != ErrTypeExpression || !strings.Contains(info.Message, `8:17: evaluating "input.until": `) {
		t.Fatalf("got %+v", info)
	}
}
