package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/metrics"
)

// TestActivityRuntimeGauges: the runtime's queue depth and in-flight
// count are read at each scrape.
func TestActivityRuntimeGauges(t *testing.T) {
	m := metrics.New(metrics.Options{})
	queued, running := 3, 5
	m.ActivityRuntime(func() (int, int) { return queued, running })
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	for _, want := range []string{"cairn_activity_queued 3\n", "cairn_activity_in_flight 5\n"} {
		if got := scrape(); !strings.Contains(got, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	queued, running = 0, 1
	if got := scrape(); !strings.Contains(got, "cairn_activity_queued 0\n") || !strings.Contains(got, "cairn_activity_in_flight 1\n") {
		t.Error("the gauges do not follow the runtime")
	}
}
