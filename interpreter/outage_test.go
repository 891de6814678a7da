package interpreter

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// countingObserver counts the store calls it hears of.
type countingObserver struct {
	nopObserver
	calls int
}

func (c *countingObserver) OnStoreCall(string, error) { c.calls++ }

// An outage of several failed calls writes one line when it starts and one
// when it ends, with its length and the calls that failed; every call
// still reaches the wrapped observer.
func TestOutageLog(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	inner := &countingObserver{}
	o := &outageLog{Observer: inner, log: slog.New(slog.NewJSONHandler(&buf, nil)), now: func() time.Time { return now }}
	down := errors.New("dial tcp: connection refused")
	o.OnStoreCall("read", nil)
	for range 5 {
		o.OnStoreCall("read", down)
		now = now.Add(time.Second)
	}
	o.OnStoreCall("commit", nil)
	o.OnStoreCall("read", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || inner.calls != 8 {
		t.Fatalf("%d calls heard, log:\n%s", inner.calls, buf.String())
	}
	var start, end map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &start)
	_ = json.Unmarshal([]byte(lines[1]), &end)
	if start["msg"] != "store unreachable: engine calls failing" || start["err"] != down.Error() {
		t.Errorf("start line %v", start)
	}
	if end["msg"] != "store reachable again" || end["outage"] != "5s" || end["failed_calls"] != 5.0 {
		t.Errorf("end line %v", end)
	}
}
