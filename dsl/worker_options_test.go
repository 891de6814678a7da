package dsl

import (
	"os"
	"testing"
	"time"
)

// TestWorkerOptions reads scheduleToStart, heartbeat and both forms of
// concurrency into the model.
func TestWorkerOptions(t *testing.T) {
	src, err := os.ReadFile("testdata/valid/worker-timeouts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wf, err := Parse("worker-timeouts.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	ship := wf.Activities["Ship"]
	if ship.ScheduleToStart != 30*time.Second || ship.Heartbeat != 10*time.Second {
		t.Errorf("Ship: scheduleToStart %s, heartbeat %s; want 30s, 10s", ship.ScheduleToStart, ship.Heartbeat)
	}
	for name, want := range map[string]Concurrency{"Ship": {Limit: 2, Global: true}, "Price": {Limit: 50}, "Tax": {Limit: 4}} {
		if c := wf.Activities[name].Concurrency; c == nil || *c != want {
			t.Errorf("%s: concurrency %+v, want %+v", name, c, want)
		}
	}
	// A worker activity with a scheduleToStart cannot wait for ever, so it
	// needs no timeout warning.
	wf, err = Parse("w.yaml", []byte("name: W\nactivities:\n  Ship: {scheduleToStart: 1m}\nsteps:\n  - activity: Ship\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(wf.Warnings) != 0 {
		t.Errorf("warnings %v, want none", wf.Warnings)
	}
}
