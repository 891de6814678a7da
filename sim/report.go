package sim

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the outcome of running test files.
type Report struct {
	Files   int      // test files found
	Broken  []string // files that could not be read, parsed or linted, each its problems
	Results []Result
	Elapsed time.Duration
}

// RunPaths finds the test files under paths (see Find), loads each and
// runs its cases; what `cairn test PATH...` does.
func RunPaths(paths ...string) *Report {
	t0 := time.Now()
	r := &Report{}
	files, err := Find(paths...)
	if err != nil {
		r.Broken = append(r.Broken, err.Error())
	}
	r.Files = len(files)
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			r.Broken = append(r.Broken, strings.TrimRight(err.Error(), "\n"))
			continue
		}
		r.Results = append(r.Results, s.Run()...)
	}
	r.Elapsed = time.Since(t0)
	return r
}

// Failed counts the cases that failed.
func (r *Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if !res.Passed {
			n++
		}
	}
	return n
}

// Exit is the exit status of `cairn test`: 2 when a file could not be read
// or linted (or none was found), 1 when a case failed, else 0.
func (r *Report) Exit() int {
	switch {
	case len(r.Broken) > 0 || r.Files == 0:
		return 2
	case r.Failed() > 0:
		return 1
	}
	return 0
}

// WriteText writes one line per case, the failures under it with their
// file:line and diff, and a summary; verbose adds every case's timeline.
func (r *Report) WriteText(w io.Writer, verbose bool) {
	for _, b := range r.Broken {
		fmt.Fprintln(w, b)
	}
	var virtual time.Duration
	for _, res := range r.Results {
		virtual += res.Virtual
		mark := "ok  "
		if !res.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s:%d: %s (virtual %s, %s)\n", mark, res.File, res.Line, res.Case, res.Virtual, roundReal(res.Elapsed))
		for _, f := range res.Failures {
			fmt.Fprintf(w, "     %s:%d: %s\n", res.File, f.Line, f.Message)
			if f.Diff != "" {
				fmt.Fprintf(w, "       --- want\n       +++ got\n")
				for _, l := range strings.Split(strings.TrimRight(f.Diff, "\n"), "\n") {
					fmt.Fprintf(w, "       %s\n", l)
				}
			}
		}
		if verbose || (!res.Passed && res.Failures[0].Field == "run") {
			WriteTimeline(indent{w}, res.Run)
		}
	}
	status := "PASS"
	if r.Exit() != 0 {
		status = "FAIL"
	}
	fmt.Fprintf(w, "%s: %s, %d passed, %d failed, in %s", status, plural(len(r.Results), "case"), len(r.Results)-r.Failed(), r.Failed(), plural(r.Files, "file"))
	if len(r.Broken) > 0 {
		fmt.Fprintf(w, " (%d could not be run)", len(r.Broken))
	}
	fmt.Fprintf(w, "; virtual %s in %s\n", virtual, roundReal(r.Elapsed))
}

func roundReal(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "ch") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// indent prefixes every line with spaces.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	_, err := io.WriteString(i.w, "       "+strings.ReplaceAll(s, "\n", "\n       ")+"\n")
	return len(p), err
}

// WriteJSON writes the results as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	type caseJSON struct {
		Result
		VirtualMs float64 `json:"virtualMs"`
		ElapsedMs float64 `json:"elapsedMs"`
		Status    string  `json:"status"`
	}
	doc := struct {
		Passed  bool       `json:"passed"`
		Files   int        `json:"files"`
		Broken  []string   `json:"broken"`
		Cases   []caseJSON `json:"cases"`
		Failed  int        `json:"failed"`
		Elapsed float64    `json:"elapsedMs"`
	}{Passed: r.Exit() == 0, Files: r.Files, Broken: r.Broken, Failed: r.Failed(), Elapsed: ms(r.Elapsed), Cases: []caseJSON{}}
	if doc.Broken == nil {
		doc.Broken = []string{}
	}
	for _, res := range r.Results {
		c := caseJSON{Result: res, VirtualMs: ms(res.Virtual), ElapsedMs: ms(res.Elapsed)}
		if res.Run != nil {
			c.Status = string(res.Run.Status)
		}
		doc.Cases = append(doc.Cases, c)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteJUnit writes the results as JUnit XML: a testsuite per test file,
// a testcase per case, a failure per unmet expectation.
func (r *Report) WriteJUnit(w io.Writer) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string    `xml:"name,attr"`
		Classname string    `xml:"classname,attr"`
		Time      string    `xml:"time,attr"`
		Failures  []failure `xml:"failure"`
	}
	type testsuite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Errors   int        `xml:"errors,attr"`
		Cases    []testcase `xml:"testcase"`
		Text     string     `xml:"system-err,omitempty"`
	}
	type testsuites struct {
		XMLName  xml.Name    `xml:"testsuites"`
		Tests    int         `xml:"tests,attr"`
		Failures int         `xml:"failures,attr"`
		Errors   int         `xml:"errors,attr"`
		Suites   []testsuite `xml:"testsuite"`
	}
	doc := testsuites{Tests: len(r.Results), Failures: r.Failed(), Errors: len(r.Broken)}
	byFile := map[string]int{}
	for _, res := range r.Results {
		i, ok := byFile[res.File]
		if !ok {
			i = len(doc.Suites)
			byFile[res.File] = i
			doc.Suites = append(doc.Suites, testsuite{Name: res.File})
		}
		tc := testcase{Name: res.Case, Classname: res.File, Time: fmt.Sprintf("%.6f", res.Elapsed.Seconds())}
		for _, f := range res.Failures {
			text := fmt.Sprintf("%s:%d: %s", res.File, f.Line, f.Message)
			if f.Diff != "" {
				text += "\n--- want\n+++ got\n" + f.Diff
			}
			tc.Failures = append(tc.Failures, failure{Message: fmt.Sprintf("%s:%d: %s", res.File, f.Line, f.Field), Type: f.Field, Text: text})
		}
		s := &doc.Suites[i]
		s.Tests++
		if !res.Passed {
			s.Failures++
		}
		s.Cases = append(s.Cases, tc)
	}
	for _, b := range r.Broken {
		doc.Suites = append(doc.Suites, testsuite{Name: strings.SplitN(b, ":", 2)[0], Errors: 1, Text: b})
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// Coverage is what the cases of a report reached, per workflow file.
type Coverage struct {
	File     string `json:"file"`
	Steps    int    `json:"steps"` // in the workflow
	Branches int    `json:"branches"`
	Gaps     []Gap  `json:"gaps"`
}

// Coverage merges what every case reached, for the workflows they ran
// (children included), in file order.
func (r *Report) Coverage() []Coverage {
	merged := map[string]*Reach{}
	for _, res := range r.Results {
		if res.Run == nil {
			continue
		}
		for f, reach := range res.Run.Reached {
			if m := merged[f]; m != nil {
				m.Merge(reach)
			} else {
				m := newReach(reach.def)
				m.Merge(reach)
				merged[f] = m
			}
		}
	}
	var out []Coverage
	for _, f := range sortedKeys(merged) {
		m := merged[f]
		steps, branches := m.Total()
		out = append(out, Coverage{File: f, Steps: steps, Branches: branches, Gaps: m.Gaps()})
	}
	return out
}

// WriteCoverage writes, per workflow, the steps and branches no case
// reached, one file:line:col line each.
func WriteCoverage(w io.Writer, cov []Coverage) {
	for _, c := range cov {
		if len(c.Gaps) == 0 {
			fmt.Fprintf(w, "coverage: %s: every one of %s and %s reached\n", c.File, plural(c.Steps, "step"), plural(c.Branches, "branch"))
			continue
		}
		fmt.Fprintf(w, "coverage: %s: %s of %s and %s not reached:\n", c.File, plural(len(c.Gaps), "gap"), plural(c.Steps, "step"), plural(c.Branches, "branch"))
		for _, g := range c.Gaps {
			fmt.Fprintf(w, "  %s\n", g)
		}
	}
}

// WriteTimeline writes a run as one line per history line: virtual time,
// instance (for children), step and what happened; then how it ended.
func WriteTimeline(w io.Writer, run *Run) {
	if run == nil {
		return
	}
	var root string
	if run.State != nil {
		root = string(run.State.ID)
	}
	width := 8
	for _, e := range run.Timeline {
		width = max(width, min(len(e.StepID), 28))
	}
	for _, e := range run.Timeline {
		who := ""
		if string(e.Instance) != root {
			who = "[" + string(e.Instance) + "] "
		}
		step := string(e.StepID)
		if step == "" {
			step = "-"
		}
		fmt.Fprintf(w, "%10s  %s%-*s  %s\n", "+"+e.At.String(), who, width, step, describe(e, run))
	}
	end := fmt.Sprintf("%s after %s of virtual time", run.Status, run.Duration)
	if run.Status.Terminal() {
		end += ", output " + orNull(run.Output)
	}
	fmt.Fprintf(w, "%10s  %s\n", "=", end)
	if run.Problem != "" {
		fmt.Fprintf(w, "%10s  stopped: %s\n", "!", run.Problem)
	}
}

// describe says what one history line means.
func describe(e Entry, run *Run) string {
	data := string(e.Data)
	switch e.Type {
	case "TaskScheduled":
		return fmt.Sprintf("call %s (attempt %d) input %s", e.Name, e.Attempt, orNull(e.Data))
	case "TaskCompleted":
		return fmt.Sprintf("%s returned %s", e.Name, orNull(e.Data))
	case "TaskFailed":
		var info struct{ Type, Message string }
		_ = json.Unmarshal(e.Data, &info)
		return fmt.Sprintf("%s failed (attempt %d): %s: %s", e.Name, e.Attempt, info.Type, info.Message)
	case "CustomStatusUpdated":
		return "status " + data
	case "TimerCreated":
		var due time.Time
		_ = json.Unmarshal(e.Data, &due)
		start := time.Time{}
		if run.State != nil {
			start = run.State.CreatedTime
		}
		return fmt.Sprintf("timer %s due +%s", e.Name, due.Sub(start))
	case "TimerFired":
		return "timer " + e.Name + " fired"
	case "EventRaised":
		if e.Name == "\x1fchild" {
			return "a child ended: " + data
		}
		return fmt.Sprintf("event %s %s", e.Name, orNull(e.Data))
	case "ExecutionStarted":
		return fmt.Sprintf("started %s with input %s", e.Name, orNull(e.Data))
	case "ExecutionCompleted":
		return "completed, output " + orNull(e.Data)
	case "ExecutionFailed":
		return "failed: " + data
	case "ExecutionTerminated", "ExecutionSuspended", "ExecutionResumed":
		return strings.TrimPrefix(e.Type, "Execution") + ": " + e.Reason
	}
	s := e.Type
	if e.Name != "" {
		s += " " + e.Name
	}
	if len(e.Data) > 0 {
		s += " " + data
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// ParseMessage reads a `cairn run --event` value, AFTER:NAME:JSON
// ("10s:BookingConfirmed:true"; the JSON may be left out for null).
func ParseMessage(s string) (Message, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 || parts[1] == "" {
		return Message{}, errors.New("want AFTER:NAME:JSON, e.g. 10s:BookingConfirmed:true")
	}
	after, err := time.ParseDuration(parts[0])
	if err != nil || after < 0 {
		return Message{}, fmt.Errorf("%q is not a duration (10s, 1h30m)", parts[0])
	}
	m := Message{After: after, Name: parts[1], Data: json.RawMessage("null")}
	if len(parts) == 3 && strings.TrimSpace(parts[2]) != "" {
		if !json.Valid([]byte(parts[2])) {
			return Message{}, fmt.Errorf("event %s: %q is not JSON", parts[1], parts[2])
		}
		m.Data = json.RawMessage(parts[2])
	}
	return m, nil
}
