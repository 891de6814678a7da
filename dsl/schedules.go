package dsl

// This file reads the `schedules:` section: cron or interval starts of the
// workflow, each with its time zone, overlap policy and catch-up window.

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/types"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// OverlapPolicy says what a tick does while the instance of an earlier tick
// still runs.
type OverlapPolicy string

const (
	// OverlapSkip: the tick starts nothing (the default).
	OverlapSkip OverlapPolicy = "skip"
	// OverlapBufferOne: the tick starts when the running instance ends; at
	// most one tick waits so, later ones are skipped.
	OverlapBufferOne OverlapPolicy = "bufferOne"
	// OverlapAllowAll: the tick starts an instance whatever runs.
	OverlapAllowAll OverlapPolicy = "allowAll"
	// OverlapTerminatePrevious: the running instance is terminated and the
	// tick's instance started.
	OverlapTerminatePrevious OverlapPolicy = "terminatePrevious"
)

var overlapPolicies = []string{string(OverlapSkip), string(OverlapBufferOne), string(OverlapAllowAll), string(OverlapTerminatePrevious)}

// Limits of a schedule.
const (
	// DefaultCatchupWindow is how late a tick may still start when the
	// schedule sets no catchupWindow: long enough for a scheduler's poll
	// and a short restart, short enough that an outage does not start a
	// burst of old runs.
	DefaultCatchupWindow = time.Minute
	// MaxCatchupWindow bounds catchupWindow.
	MaxCatchupWindow = 366 * 24 * time.Hour
	// MinEvery and MaxEvery bound an `every:` interval.
	MinEvery = time.Second
	MaxEvery = 366 * 24 * time.Hour
	// MaxSchedules bounds the schedules of one workflow.
	MaxSchedules = 100
)

// Schedule is one entry of `schedules:`: it starts an instance of the
// workflow at every tick, with the id `<ID>-<tick in UTC, 20060102T150405Z>`.
type Schedule struct {
	ID  string
	Pos Pos // the entry's mapping
	// Exactly one of Cron and Every is set.
	Cron  *CronSpec
	Every time.Duration // whole seconds; ticks at multiples of it since the Unix epoch
	// Timezone is the IANA name the cron fields are read in ("UTC" by
	// default); Location is it loaded.
	Timezone string
	Location *time.Location
	// Input is the start input of each tick's instance; it may use
	// `schedule` ({id, time}); nil = null.
	Input         *Value
	Overlap       OverlapPolicy
	CatchupWindow time.Duration
	Paused        bool

	IDPos Pos // where the id is written
}

// CronSpec is a parsed cron expression: one bit per allowed value of each
// field (minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week
// 0-6 with Sunday 0).
type CronSpec struct {
	Source                   string // as written, e.g. "0 2 * * *" or "@daily"
	Minute, Hour, Dom, Month uint64
	Dow                      uint64
	// DomStar and DowStar: the field was `*` (or `?`). As in cron, a day
	// matches when both day fields match, unless one of them is a star,
	// then the other alone decides.
	DomStar, DowStar bool
}

// ScheduleInfo is the `schedule` object a schedule's input sees.
type ScheduleInfo struct {
	ID   string
	Time time.Time // the tick, in UTC
}

var scheduleType = types.Map{"id": types.String, "time": types.TypeOf(time.Time{})}

var scheduleFields = []string{"id", "cron", "every", "timezone", "input", "overlap", "catchupWindow", "paused"}

// cronParser reads the five standard fields and the @hourly-style
// descriptors. Seconds are not offered: instance ids name the second, and a
// schedule more often than a minute is written `every:`.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (p *parser) schedules(n *yaml.Node) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "'schedules' must be a list of schedules, each with an id and a cron or every, not %s", kindName(n))
		return
	}
	if !p.limit("schedules", len(n.Content), MaxSchedules, nodePos(n)) {
		return
	}
	seen := map[string]Pos{}
	for _, item := range n.Content {
		s := p.schedule(item)
		if s == nil || s.ID == "" {
			continue
		}
		if at, dup := seen[s.ID]; dup {
			p.errorf(s.IDPos, CodeDuplicateSchedule, "schedule id '%s' is already used at %s; schedule ids must be unique among all workflows", s.ID, at)
			continue
		}
		seen[s.ID] = s.IDPos
		p.wf.Schedules = append(p.wf.Schedules, s)
	}
}

func (p *parser) schedule(n *yaml.Node) *Schedule {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(nodePos(n), CodeTypeMismatch, "a schedule must be a mapping with an id and a cron or every, not %s", kindName(n))
		return nil
	}
	s := &Schedule{Pos: nodePos(n), Timezone: "UTC", Location: time.UTC, Overlap: OverlapSkip, CatchupWindow: DefaultCatchupWindow}
	var cronNode, everyNode, tzNode, idNode *yaml.Node
	seen := map[string]bool{}
	ok := true
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		if seen[k.Value] {
			continue // reported as a duplicate key
		}
		seen[k.Value] = true
		switch k.Value {
		case "id":
			idNode = v
		case "cron":
			cronNode = v
		case "every":
			everyNode = v
		case "timezone":
			tzNode = v
		case "input":
			s.Input = p.value(v, &scope{binding: true, schedule: true})
		case "overlap":
			if !isString(v) || !contains(overlapPolicies, resolve(v).Value) {
				hint := ""
				if isString(v) {
					hint = suggest(resolve(v).Value, overlapPolicies)
				}
				p.errorf(nodePos(v), CodeSchedule, "'overlap' must be one of %s%s", strings.Join(overlapPolicies, ", "), hint)
				ok = false
			} else {
				s.Overlap = OverlapPolicy(resolve(v).Value)
			}
		case "catchupWindow":
			if d, good := p.staticDuration("catchupWindow", v, false, MaxCatchupWindow); good {
				s.CatchupWindow = d
			} else {
				ok = false
			}
		case "paused":
			if rv := resolve(v); rv.Kind != yaml.ScalarNode || rv.ShortTag() != "!!bool" {
				p.errorf(nodePos(v), CodeTypeMismatch, "'paused' must be true or false, not %s", kindName(v))
				ok = false
			} else {
				s.Paused = rv.Value == "true"
			}
		default:
			p.errorf(nodePos(k), CodeUnknownField, "unknown field '%s' in a schedule%s", k.Value, suggest(k.Value, scheduleFields))
			ok = false
		}
	}
	switch {
	case idNode == nil:
		p.errorf(s.Pos, CodeMissingField, "the schedule has no 'id'")
		ok = false
	case !isString(idNode):
		p.errorf(nodePos(idNode), CodeTypeMismatch, "a schedule's 'id' must be a string, not %s", kindName(idNode))
		ok = false
	case !nameRE.MatchString(resolve(idNode).Value):
		p.errorf(nodePos(idNode), CodeInvalidName, "schedule id '%s' must start with a letter and hold only letters, digits, '_', '.' and '-' (at most 100)", resolve(idNode).Value)
		ok = false
	default:
		s.ID, s.IDPos = resolve(idNode).Value, nodePos(idNode)
	}
	switch {
	case cronNode != nil && everyNode != nil:
		p.errorf(nodePos(everyNode), CodeSchedule, "a schedule has either 'cron' or 'every', not both")
		ok = false
	case cronNode == nil && everyNode == nil:
		p.errorf(s.Pos, CodeMissingField, "the schedule has neither 'cron' nor 'every'; add one, e.g. cron: \"0 2 * * *\" or every: 1h")
		ok = false
	case cronNode != nil:
		s.Cron = p.cronSpec(cronNode)
		ok = ok && s.Cron != nil
	default:
		d, good := p.staticDuration("every", everyNode, true, MaxEvery)
		switch {
		case !good:
			ok = false
		case d < MinEvery || d%time.Second != 0:
			p.errorf(nodePos(everyNode), CodeOptionRange, "'every' must be a whole number of seconds, at least 1s, not %s", d)
			ok = false
		default:
			s.Every = d
		}
	}
	if tzNode != nil {
		if loc := p.timezone(tzNode); loc != nil {
			s.Timezone, s.Location = resolve(tzNode).Value, loc
		} else {
			ok = false
		}
	}
	if !ok {
		// Still return the id, so a duplicate is reported too.
		return &Schedule{ID: s.ID, Pos: s.Pos, IDPos: s.IDPos}
	}
	return s
}

// timezone loads an IANA time zone name.
func (p *parser) timezone(n *yaml.Node) *time.Location {
	if !isString(n) {
		p.errorf(nodePos(n), CodeTypeMismatch, "'timezone' must be an IANA time zone name such as Europe/Stockholm, not %s", kindName(n))
		return nil
	}
	name := resolve(n).Value
	// time.LoadLocation also takes "" and "Local" (the machine's zone),
	// which would make a schedule depend on where its engine runs.
	if name == "" || name == "Local" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		p.errorf(nodePos(n), CodeTimezone, "'timezone' must be an IANA time zone name such as Europe/Stockholm or UTC, not '%s'", name)
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		p.errorf(nodePos(n), CodeTimezone, "unknown time zone '%s': use an IANA name such as Europe/Stockholm, America/New_York or UTC", name)
		return nil
	}
	return loc
}

// cronSpec parses a cron expression and reports a mistake at the field
// that holds it.
func (p *parser) cronSpec(n *yaml.Node) *CronSpec {
	if !isString(n) {
		p.errorf(nodePos(n), CodeTypeMismatch, "'cron' must be a string of 5 fields such as \"0 2 * * *\", or @hourly, @daily, @weekly, @monthly, @yearly, not %s", kindName(n))
		return nil
	}
	src := resolve(n).Value
	text := strings.TrimSpace(src)
	lead := utf8.RuneCountInString(src[:strings.Index(src, text)]) // rune offset of text in src
	switch {
	case text == "":
		p.errorf(nodePos(n), CodeCron, "'cron' is empty; write 5 fields such as \"0 2 * * *\" or a descriptor such as @daily")
		return nil
	case strings.HasPrefix(text, "TZ=") || strings.HasPrefix(text, "CRON_TZ="):
		p.errorf(p.runePos(resolve(n), lead), CodeCron, "write the time zone in 'timezone', not in the cron expression")
		return nil
	case strings.HasPrefix(text, "@every"):
		p.errorf(p.runePos(resolve(n), lead), CodeCron, "write an interval as 'every: 90s' instead of '@every' in 'cron'")
		return nil
	}
	sched, err := cronParser.Parse(text)
	if err != nil {
		off, msg := cronFieldError(text, err)
		p.errorf(p.runePos(resolve(n), lead+off), CodeCron, "bad cron expression '%s': %s", text, msg)
		return nil
	}
	ss, ok := sched.(*cron.SpecSchedule)
	if !ok {
		p.errorf(nodePos(n), CodeCron, "bad cron expression '%s'", text)
		return nil
	}
	const starBit = 1 << 63
	return &CronSpec{Source: text,
		Minute: ss.Minute &^ starBit, Hour: ss.Hour &^ starBit, Dom: ss.Dom &^ starBit, Month: ss.Month &^ starBit, Dow: ss.Dow &^ starBit,
		DomStar: ss.Dom&starBit != 0, DowStar: ss.Dow&starBit != 0}
}

var cronFieldNames = []string{"minute (0-59)", "hour (0-23)", "day of month (1-31)", "month (1-12 or JAN-DEC)", "day of week (0-6 or SUN-SAT)"}

// cronFieldError finds which field of a rejected expression is wrong, by
// parsing each field alone with the others `*`, and returns its rune offset
// in text and a message naming it.
func cronFieldError(text string, err error) (int, string) {
	if strings.HasPrefix(text, "@") {
		return 0, "unknown descriptor; use @hourly, @daily (or @midnight), @weekly, @monthly or @yearly (or @annually)"
	}
	fields, offs := fieldsAt(text)
	if len(fields) != 5 {
		return 0, fmt.Sprintf("it has %d fields; a cron expression has 5: minute hour day-of-month month day-of-week", len(fields))
	}
	for i := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = fields[i]
		if _, ferr := cronParser.Parse(strings.Join(probe, " ")); ferr != nil {
			return offs[i], fmt.Sprintf("field %d, the %s: %v", i+1, cronFieldNames[i], ferr)
		}
	}
	return 0, err.Error()
}

// fieldsAt splits text at blanks and returns the fields with the rune
// offset of each.
func fieldsAt(text string) ([]string, []int) {
	var fields []string
	var offs []int
	start := -1
	rs := []rune(text)
	for i := 0; i <= len(rs); i++ {
		blank := i == len(rs) || rs[i] == ' ' || rs[i] == '\t'
		switch {
		case !blank && start < 0:
			start = i
		case blank && start >= 0:
			fields = append(fields, string(rs[start:i]))
			offs = append(offs, start)
			start = -1
		}
	}
	return fields, offs
}

// InstanceID is the id of the instance a tick at t starts:
// `<schedule id>-<t in UTC, 20261202T020000Z>`. It is the same in every
// engine, which is what makes a tick start exactly once.
func (s *Schedule) InstanceID(t time.Time) string {
	return s.ID + "-" + t.UTC().Format("20060102T150405Z")
}

// EvalInput computes the start input of the tick at t.
func (s *Schedule) EvalInput(t time.Time) (any, error) {
	if s.Input == nil {
		return nil, nil
	}
	return s.Input.Eval(&Env{Schedule: &ScheduleInfo{ID: s.ID, Time: t.UTC()}})
}

// Describe is the schedule's rule as people write it: the cron expression
// or "every 90s".
func (s *Schedule) Describe() string {
	if s.Cron != nil {
		return s.Cron.Source
	}
	return "every " + s.Every.String()
}
