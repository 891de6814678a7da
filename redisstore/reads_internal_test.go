package redisstore

import "testing"

// TestStreamIndex: found wherever it is, whatever the start; -1 when
// absent.
func TestStreamIndex(t *testing.T) {
	streams := []string{"a", "b", "c", "d"}
	for from := range streams {
		for want, name := range streams {
			if got := streamIndex(streams, name, from); got != want {
				t.Errorf("streamIndex(%q, from %d) = %d, want %d", name, from, got, want)
			}
		}
		if got := streamIndex(streams, "e", from); got != -1 {
			t.Errorf("streamIndex(e, from %d) = %d, want -1", from, got)
		}
	}
	if got := streamIndex(nil, "a", 0); got != -1 {
		t.Errorf("streamIndex(nil) = %d", got)
	}
}
