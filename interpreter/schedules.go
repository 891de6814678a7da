package interpreter

// This file is the pure part of schedules: when a schedule ticks. Cron
// fields are read on the wall clock of the schedule's time zone, with the
// daylight-saving rules of cron (cronie): a fixed time that a change skips
// (02:30 when clocks go from 02:00 to 03:00) runs at the change, and a fixed
// time that happens twice runs once, at its first occurrence; a schedule
// whose hour field is `*` runs at every real occurrence of its wall times
// (both 02:00s, none in the skipped hour), so it keeps its rhythm. `every:`
// is absolute: multiples of the interval since the Unix epoch.

import (
	"time"

	"github.com/cairnhq/cairn/dsl"
)

// NextTick returns the first tick of s strictly after after, in UTC; zero
// when there is none within five years (a cron for February 30).
func NextTick(s *dsl.Schedule, after time.Time) time.Time {
	if s.Every > 0 {
		step := int64(s.Every / time.Second)
		secs := after.Unix()
		next := (floorDiv(secs, step) + 1) * step
		return time.Unix(next, 0).UTC()
	}
	if s.Cron == nil {
		return time.Time{}
	}
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	return nextCron(s.Cron, loc, after)
}

// NextTicks returns the next n ticks after after.
func NextTicks(s *dsl.Schedule, after time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for len(out) < n {
		t := NextTick(s, after)
		if t.IsZero() {
			break
		}
		out = append(out, t)
		after = t
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

const allHours = 1<<24 - 1

func nextCron(c *dsl.CronSpec, loc *time.Location, after time.Time) time.Time {
	everyHour := c.Hour&allHours == allHours
	y, m, d := after.In(loc).Date()
	// Start a day early: a wall time of the previous local day can, in a
	// zone that repeats an hour at midnight, still lie after `after`.
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	for i := 0; i < 5*366+2; i++ {
		if dayMatches(c, day) {
			var best time.Time
			for h := 0; h < 24; h++ {
				if c.Hour&(1<<h) == 0 {
					continue
				}
				for mi := 0; mi < 60; mi++ {
					if c.Minute&(1<<mi) == 0 {
						continue
					}
					for _, t := range wallInstants(day.Year(), day.Month(), day.Day(), h, mi, loc, everyHour) {
						if t.After(after) && (best.IsZero() || t.Before(best)) {
							best = t
						}
					}
				}
			}
			if !best.IsZero() {
				return best.UTC()
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}
}

// dayMatches is cron's day rule: the month must match, and the day of
// month and the day of week both, unless one of them is `*`, when the
// other alone decides.
func dayMatches(c *dsl.CronSpec, day time.Time) bool {
	if c.Month&(1<<uint(day.Month())) == 0 {
		return false
	}
	dom := c.Dom&(1<<uint(day.Day())) != 0
	dow := c.Dow&(1<<uint(day.Weekday())) != 0
	if c.DomStar || c.DowStar {
		return dom && dow
	}
	return dom || dow
}

// wallInstants returns the instants at which loc's clock shows the wall
// time y-m-d h:mi. every says the schedule runs every hour: then a time
// shown twice gives both instants and a skipped time none; otherwise the
// first instant, or for a skipped time the instant the clocks change.
func wallInstants(y int, m time.Month, d, h, mi int, loc *time.Location, every bool) []time.Time {
	wall := time.Date(y, m, d, h, mi, 0, 0, time.UTC)
	// The zone offsets around the wall time: a day before and after,
	// which no real zone changes twice within.
	_, before := wall.Add(-24 * time.Hour).In(loc).Zone()
	_, after := wall.Add(24 * time.Hour).In(loc).Zone()
	var out []time.Time
	for _, off := range []int{before, after} {
		t := wall.Add(-time.Duration(off) * time.Second)
		if sameWall(t.In(loc), wall) && (len(out) == 0 || !out[0].Equal(t)) {
			out = append(out, t)
		}
	}
	if len(out) == 2 && out[1].Before(out[0]) {
		out[0], out[1] = out[1], out[0]
	}
	switch {
	case len(out) == 0 && every:
		return nil
	case len(out) == 0:
		// Read with the offset from before the change, the time falls
		// after the gap; the zone in force there began at the change.
		t := wall.Add(-time.Duration(before) * time.Second).In(loc)
		start, _ := t.ZoneBounds()
		if start.IsZero() {
			return nil
		}
		return []time.Time{start}
	case len(out) == 2 && !every:
		return out[:1]
	}
	return out
}

func sameWall(t, wall time.Time) bool {
	y, m, d := t.Date()
	wy, wm, wd := wall.Date()
	return y == wy && m == wm && d == wd && t.Hour() == wall.Hour() && t.Minute() == wall.Minute() && t.Second() == 0
}
