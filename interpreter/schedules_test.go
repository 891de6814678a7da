package interpreter

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
)

func parseSchedule(t *testing.T, rule string) *dsl.Schedule {
	t.Helper()
	src := "name: W\nschedules:\n  - id: s\n    " + rule + "\nsteps:\n  - return: 1\n"
	wf, err := dsl.Parse("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return wf.Schedules[0]
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func checkTicks(t *testing.T, s *dsl.Schedule, from string, want ...string) {
	t.Helper()
	got := NextTicks(s, utc(from), len(want))
	if len(got) != len(want) {
		t.Fatalf("%s: %d ticks, want %d: %v", s.Describe(), len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Equal(utc(want[i])) {
			t.Errorf("%s from %s: tick %d = %s (%s), want %s", s.Describe(), from, i, got[i].Format(time.RFC3339), got[i].In(s.Location).Format("2006-01-02 15:04 MST"), want[i])
		}
	}
}

// TestDailyCronAcrossDST: a daily 02:00 in Europe/Stockholm runs once a
// day, at 02:00 local; on 2026-03-29, when 02:00 does not exist (clocks
// go 02:00 CET -> 03:00 CEST), at 03:00 CEST; on 2026-10-25, when 02:00
// happens twice (03:00 CEST -> 02:00 CET), once, at the first.
func TestDailyCronAcrossDST(t *testing.T) {
	s := parseSchedule(t, "cron: \"0 2 * * *\"\n    timezone: Europe/Stockholm")
	checkTicks(t, s, "2026-03-27T12:00:00Z",
		"2026-03-28T01:00:00Z", // 02:00 CET
		"2026-03-29T01:00:00Z", // 03:00 CEST, the change
		"2026-03-30T00:00:00Z", // 02:00 CEST
	)
	checkTicks(t, s, "2026-10-23T12:00:00Z",
		"2026-10-24T00:00:00Z", // 02:00 CEST
		"2026-10-25T00:00:00Z", // the first 02:00 (CEST)
		"2026-10-26T01:00:00Z", // 02:00 CET
	)
	half := parseSchedule(t, "cron: \"30 2 * * *\"\n    timezone: Europe/Stockholm")
	checkTicks(t, half, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z")
	checkTicks(t, half, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z")
}

// TestHourlyCronAcrossDST: with `*` hours every real hour runs: none in
// the skipped one, both 02:00s of the repeated one.
func TestHourlyCronAcrossDST(t *testing.T) {
	s := parseSchedule(t, "cron: \"0 * * * *\"\n    timezone: Europe/Stockholm")
	checkTicks(t, s, "2026-03-28T23:30:00Z",
		"2026-03-29T00:00:00Z", // 01:00 CET
		"2026-03-29T01:00:00Z", // 03:00 CEST
		"2026-03-29T02:00:00Z",
	)
	checkTicks(t, s, "2026-10-24T22:30:00Z",
		"2026-10-24T23:00:00Z", // 01:00 CEST
		"2026-10-25T00:00:00Z", // 02:00 CEST
		"2026-10-25T01:00:00Z", // 02:00 CET
		"2026-10-25T02:00:00Z", // 03:00 CET
	)
}

func TestCronRules(t *testing.T) {
	checkTicks(t, parseSchedule(t, "cron: \"*/15 9-10 * * MON\""), "2026-12-06T10:00:00Z", // a Sunday
		"2026-12-07T09:00:00Z", "2026-12-07T09:15:00Z", "2026-12-07T09:30:00Z", "2026-12-07T09:45:00Z", "2026-12-07T10:00:00Z")
	// Day of month or day of week when both are given, as in cron.
	checkTicks(t, parseSchedule(t, "cron: \"0 0 13 * 5\""), "2026-02-01T00:00:00Z",
		"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z")
	checkTicks(t, parseSchedule(t, "cron: \"@monthly\"\n    timezone: America/New_York"), "2026-01-15T00:00:00Z",
		"2026-02-01T05:00:00Z", "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z")
	if got := NextTick(parseSchedule(t, "cron: \"0 0 30 2 *\""), utc("2026-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("February 30 ticks at %s", got)
	}
}

func TestEveryTicks(t *testing.T) {
	checkTicks(t, parseSchedule(t, "every: 90s\n    timezone: Europe/Stockholm"), "2026-12-02T02:00:00Z",
		"2026-12-02T02:01:30Z", "2026-12-02T02:03:00Z")
	checkTicks(t, parseSchedule(t, "every: 1h"), "2026-12-02T02:59:59.9Z", "2026-12-02T03:00:00Z", "2026-12-02T04:00:00Z")
}
