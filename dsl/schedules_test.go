package dsl

import (
	"testing"
	"time"
)

func TestScheduleModel(t *testing.T) {
	src := []byte(`name: W
schedules:
  - id: nightly
    cron: "  0 2 * * 1-5"
    timezone: Europe/Stockholm
    input: {at: "${ schedule.time }", who: "${ schedule.id }", n: 1}
    overlap: bufferOne
    catchupWindow: 1h
    paused: true
  - id: often
    every: 90s
  - id: daily
    cron: "@daily"
steps:
  - return: 1
`)
	wf, err := Parse("w.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(wf.Schedules) != 3 {
		t.Fatalf("%d schedules, want 3", len(wf.Schedules))
	}
	n := wf.Schedules[0]
	if n.ID != "nightly" || n.Timezone != "Europe/Stockholm" || n.Location.String() != "Europe/Stockholm" ||
		n.Overlap != OverlapBufferOne || n.CatchupWindow != time.Hour || !n.Paused || n.Every != 0 {
		t.Errorf("nightly = %+v", n)
	}
	c := n.Cron
	if c.Source != "0 2 * * 1-5" || c.Minute != 1 || c.Hour != 1<<2 || c.Dow != 0b111110 || c.DowStar || !c.DomStar || c.Month != 0b1111111111110 {
		t.Errorf("cron = %+v", c)
	}
	tick := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	if got := n.InstanceID(tick.In(n.Location)); got != "nightly-20261202T010000Z" {
		t.Errorf("InstanceID = %s", got)
	}
	in, err := n.EvalInput(tick)
	if err != nil {
		t.Fatal(err)
	}
	m := in.(map[string]any)
	if m["at"] != "2026-12-02T01:00:00Z" || m["who"] != "nightly" || m["n"] != float64(1) {
		t.Errorf("input = %v", in)
	}
	o := wf.Schedules[1]
	if o.Every != 90*time.Second || o.Cron != nil || o.Overlap != OverlapSkip || o.CatchupWindow != DefaultCatchupWindow || o.Timezone != "UTC" || o.Describe() != "every 1m30s" {
		t.Errorf("often = %+v", o)
	}
	if in, err := o.EvalInput(tick); err != nil || in != nil {
		t.Errorf("input without one = %v, %v", in, err)
	}
	d := wf.Schedules[2].Cron
	if d.Minute != 1 || d.Hour != 1 || !d.DomStar || !d.DowStar {
		t.Errorf("@daily = %+v", d)
	}
}

func TestCronFieldError(t *testing.T) {
	for _, tc := range []struct {
		cron string
		col  int
	}{
		{"0 2 * * MON-FRX", 9},
		{"61 2 * * *", 1},
		{"0 2 32 * *", 5},
		{"0 2 * 13 *", 7},
		{"@nightly", 1},
	} {
		src := []byte("name: W\nschedules:\n  - id: s\n    cron: \"" + tc.cron + "\"\nsteps:\n  - return: 1\n")
		_, err := Parse("w.yaml", src)
		is, ok := err.(Issues)
		if !ok || len(is) != 1 || is[0].Code != CodeCron {
			t.Errorf("%s: %v", tc.cron, err)
			continue
		}
		// The scalar's opening quote is at column 11.
		if want := (Pos{4, 11 + tc.col}); is[0].Pos != want {
			t.Errorf("%s: at %v, want %v (%s)", tc.cron, is[0].Pos, want, is[0].Message)
		}
	}
}
