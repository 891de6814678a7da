package interpreter

import (
	"testing"
	"time"
)

// TestTimeJSON holds timeJSON to the encoding it replaced.
func TestTimeJSON(t *testing.T) {
	east := time.FixedZone("east", 9*3600+30*60)
	for _, tm := range []time.Time{
		{}, t0, t0.Add(123456789), t0.Add(time.Millisecond), t0.In(east),
		time.Date(10000, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(-1, 12, 31, 23, 59, 59, 0, east),
		time.Unix(0, 0), time.Now(),
	} {
		if got, want := string(timeJSON(tm)), string(mustJSON(tm.UTC().Format(time.RFC3339Nano))); got != want {
			t.Errorf("timeJSON(%v) = %s, want %s", tm, got, want)
		}
	}
}
