package sim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleWorkflows runs workflows/ the way `cairn test workflows/`
// does, and wants a test file for every example workflow.
func TestExampleWorkflows(t *testing.T) {
	r := RunPaths("../workflows")
	var out bytes.Buffer
	r.WriteText(&out, false)
	if r.Exit() != 0 {
		t.Fatalf("cairn test workflows/ exits %d:\n%s", r.Exit(), out.String())
	}
	tested := map[string]bool{}
	for _, res := range r.Results {
		tested[filepath.Base(res.Workflow)] = true
	}
	examples, _ := filepath.Glob("../workflows/*.yaml")
	if len(examples) < 5 {
		t.Fatalf("want the example workflows, found %v", examples)
	}
	for _, f := range examples {
		if !tested[filepath.Base(f)] {
			t.Errorf("%s has no test file in workflows/tests/", f)
		}
	}
	for _, c := range r.Coverage() {
		for _, g := range c.Gaps {
			t.Errorf("no example case reaches %s", g)
		}
	}
}

// files writes name → content into a temporary folder and returns it.
func files(t *testing.T, fs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range fs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, dir string) *Suite {
	t.Helper()
	s, err := Load(filepath.Join(dir, "w.test.yaml"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

// lineOf is the 1-based line of the first line of src holding text.
func lineOf(t *testing.T, src, text string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("no %q in the source", text)
	return 0
}

const approval = `name: Approval
input: {type: object}
activities:
  Score:
    expr: input.amount * 2
  Notify: {}
steps:
  - id: score
    activity: Score
    input: ${ input }
    result: score
  - setStatus: {score: "${ score }"}
  - id: decide
    switch:
      - when: score > 100
        steps:
          - id: ask
            wait:
              event: Approved
              timeout: 24h
              result: ok
              onTimeout:
                - set: {ok: false}
      - default:
          - set: {ok: true}
  - id: notify
    activity: Notify
    input: ${ ok }
    result: sent
  - setStatus: {score: "${ score }", ok: "${ ok }"}
  - return: {ok: "${ ok }", sent: "${ sent }"}
`

// Every expectation kind, met.
func TestExpectationsPass(t *testing.T) {
	test := `workflow: w.yaml
cases:
  - name: big, no answer for a day
    input: {amount: 60}
    activities:
      Notify: {result: mailed}
    expect:
      status: Completed
      output: {ok: false, sent: mailed}
      customStatus: [{score: 120}, {score: 120, ok: false}]
      calls: {Score: 1, Notify: 1}
      duration: 24h
  - name: small
    input: {amount: 1}
    activities:
      Notify: {result: mailed}
    expect:
      output: {ok: true, sent: mailed}
      duration: 0s
  - name: notify fails
    input: {amount: 1}
    activities:
      Notify: {error: {type: SMTPDown, message: connection refused}}
    expect:
      status: Failed
      error: {type: SMTPDown, message: refused}
`
	s := load(t, files(t, map[string]string{"w.yaml": approval, "w.test.yaml": test}))
	for _, res := range s.Run() {
		if !res.Passed {
			t.Errorf("%s: %+v", res.Case, res.Failures)
		}
	}
}

// Every expectation kind, unmet: each failure at its own line.
func TestExpectationsFail(t *testing.T) {
	test := `workflow: w.yaml
cases:
  - name: all wrong
    input: {amount: 60}
    activities:
      Notify: {result: mailed}
    events:
      - {after: 1h, name: Approved, data: true}
    expect:
      status: Failed
      output: {ok: false, sent: mailed}
      customStatus: [{score: 120}]
      error: Boom
      calls: {Score: 2, Notify: 1}
      duration: 2h
`
	s := load(t, files(t, map[string]string{"w.yaml": approval, "w.test.yaml": test}))
	res := s.Run()[0]
	if res.Passed {
		t.Fatal("passed")
	}
	want := map[string]string{
		"status":       "status: want \"Failed\", got \"Completed\"",
		"output":       "output: want and got differ",
		"customStatus": "customStatus: want and got differ",
		"error":        "error: want a failure of type Boom, got status Completed",
		"calls.Score":  "calls.Score: want 2, got 1",
		"duration":     "duration: want 2h0m0s of virtual time, got 1h0m0s",
	}
	got := map[string]Failure{}
	for _, f := range res.Failures {
		got[f.Field] = f
	}
	for field, msg := range want {
		f, ok := got[field]
		if !ok {
			t.Errorf("no failure for %s (got %+v)", field, res.Failures)
			continue
		}
		if !strings.Contains(f.Message, msg) {
			t.Errorf("%s: message %q, want it to hold %q", field, f.Message, msg)
		}
		if strings.HasPrefix(field, "calls.") {
			continue
		}
		if line := lineOf(t, test, "      "+field+":"); f.Line != line {
			t.Errorf("%s: line %d, want %d", field, f.Line, line)
		}
	}
	if _, ok := got["calls.Notify"]; ok {
		t.Error("calls.Notify was met")
	}
	if f := got["calls.Score"]; f.Line != lineOf(t, test, "calls:") {
		t.Errorf("calls.Score on line %d", f.Line)
	}
	if d := got["output"].Diff; !strings.Contains(d, `-   "ok": false,`) || !strings.Contains(d, `+   "ok": true,`) || !strings.Contains(d, `    "sent": "mailed"`) {
		t.Errorf("output diff:\n%s", d)
	}
}

// A deliberately wrong expectation fails with the case's name, the line of
// the expectation and a diff, in the text report.
func TestWrongExpectationReport(t *testing.T) {
	test := strings.ReplaceAll(readFile(t, "../workflows/tests/reserve-ticket.test.yaml"), "workflow: ../reserve-ticket.yaml", "workflow: "+abs(t, "../workflows/reserve-ticket.yaml"))
	test = strings.Replace(test, "{message: Thank you for confirming your booking.}", "{message: Thanks!}", 1)
	dir := files(t, map[string]string{"w.test.yaml": test})
	r := RunPaths(dir)
	var out bytes.Buffer
	r.WriteText(&out, false)
	text := out.String()
	file := filepath.Join(dir, "w.test.yaml")
	line := lineOf(t, test, "customStatus:")
	for _, want := range []string{
		"FAIL " + file + ":4: confirmed in time",
		file + ":" + itoa(line) + ": customStatus: want and got differ",
		`-     "message": "Thanks!"`,
		`+     "message": "Thank you for confirming your booking."`,
		"FAIL: 5 cases, 4 passed, 1 failed, in 1 file",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	if r.Exit() != 1 {
		t.Errorf("exit %d, want 1", r.Exit())
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func readFile(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func abs(t *testing.T, f string) string {
	a, err := filepath.Abs(f)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const retried = `name: Retried
activities:
  Charge:
    retry: {maxAttempts: 4, firstInterval: 10s, backoff: 3}
steps:
  - activity: Charge
    result: charged
  - wait: {duration: 24h}
  - return: ${ charged }
`

// A list of mocks answers the calls in order; errors are retried on the
// policy's timers, and a day's wait passes in virtual time.
func TestListMocksAndRetries(t *testing.T) {
	test := `workflow: w.yaml
cases:
  - name: third time lucky
    activities:
      Charge:
        - {error: {type: CardDeclined, message: no}}
        - {error: CardDeclined}
        - {result: {id: ch_1}}
    expect:
      output: {id: ch_1}
      calls: {Charge: 3}
      duration: 24h40s
  - name: declined for good
    activities:
      Charge: {error: {type: CardDeclined, message: no}}
    expect:
      status: Failed
      error: {type: CardDeclined, message: "after 4 attempt(s)"}
      duration: 2m10s
  - name: not enough mocks
    activities:
      Charge: [{error: Down}]
    expect:
      status: Completed
`
	s := load(t, files(t, map[string]string{"w.yaml": retried, "w.test.yaml": test}))
	res := s.Run()
	for _, r := range res[:2] {
		if !r.Passed {
			t.Errorf("%s: %+v", r.Case, r.Failures)
		}
	}
	if f := res[2].Failures; res[2].Passed || f[0].Field != "run" || !strings.Contains(f[0].Message, "activity Charge was called 2 times") || !strings.Contains(f[0].Message, "mocks for 1") {
		t.Errorf("not enough mocks: %+v", f)
	}
	if res[0].Virtual != 24*time.Hour+40*time.Second {
		t.Errorf("virtual %s", res[0].Virtual)
	}
	t.Logf("a case with a 24 h wait and two retries took %s", res[0].Elapsed)
}

// An activity with neither a mock nor an expr binding fails the case,
// named; the timeline says where it stopped.
func TestUnmockedActivity(t *testing.T) {
	wf := `name: Hooks
activities:
  Post:
    http: {url: "https://example.com/hook"}
  Ship: {worker: true, timeout: 1m}
steps:
  - activity: Ship
  - activity: Post
`
	test := `workflow: w.yaml
cases:
  - name: worker
  - name: http
    activities:
      Ship: {result: null}
`
	s := load(t, files(t, map[string]string{"w.yaml": wf, "w.test.yaml": test}))
	res := s.Run()
	if f := res[0].Failures; len(f) != 1 || !strings.Contains(f[0].Message, "activity Ship") || !strings.Contains(f[0].Message, "external worker") || !strings.Contains(f[0].Message, "no mock") {
		t.Errorf("worker: %+v", f)
	}
	if f := res[1].Failures; len(f) != 1 || !strings.Contains(f[0].Message, "activity Post") || !strings.Contains(f[0].Message, "http binding") {
		t.Errorf("http: %+v", f)
	}
	var out bytes.Buffer
	(&Report{Files: 1, Results: res}).WriteText(&out, false)
	if !strings.Contains(out.String(), "stopped: activity Ship") {
		t.Errorf("no timeline for the stopped case:\n%s", out.String())
	}
}

// A call step runs the child from the parent's folder; a child that is not
// there fails the case.
func TestChildWorkflows(t *testing.T) {
	parent := `name: Parent
steps:
  - call: Child
    input: 3
    result: r
  - return: ${ r }
`
	child := `name: Child
input: {type: number}
activities:
  Triple: {}
steps:
  - wait: {duration: 1h}
  - activity: Triple
    input: ${ input }
    result: t
  - setStatus: {t: "${ t }"}
  - return: ${ t }
`
	test := `workflow: parent.yaml
cases:
  - name: the child runs
    activities:
      Triple: {result: 9}
    expect:
      output: 9
      duration: 1h
      customStatus: []
      calls: {Triple: 1}
`
	dir := files(t, map[string]string{"parent.yaml": parent, "child.yaml": child, "w.test.yaml": test})
	s := load(t, dir)
	res := s.Run()[0]
	if !res.Passed {
		t.Fatalf("%+v", res.Failures)
	}
	cov := (&Report{Results: []Result{res}}).Coverage()
	if len(cov) != 2 || !strings.HasSuffix(cov[0].File, "child.yaml") || len(cov[0].Gaps) != 0 {
		t.Errorf("coverage of the child: %+v", cov)
	}
	os.Remove(filepath.Join(dir, "child.yaml"))
	s = load(t, dir)
	res = s.Run()[0]
	if res.Passed || !strings.Contains(res.Failures[0].Message, "calls workflow Child, which the simulation does not have") {
		t.Errorf("missing child: %+v", res.Failures)
	}
}

// Terminate, suspend and resume are messages like events.
func TestControlMessages(t *testing.T) {
	test := `workflow: w.yaml
cases:
  - name: terminated in the retry delay
    activities:
      Charge: {error: Down}
    events:
      - {after: 5s, terminate: enough}
    expect:
      status: Terminated
      output: enough
      duration: 5s
  - name: suspended across the wait
    activities:
      Charge: {result: 1}
    events:
      - {after: 1h, suspend: hold}
      - {after: 48h, resume: go}
    expect:
      status: Completed
      duration: 48h
`
	s := load(t, files(t, map[string]string{"w.yaml": retried, "w.test.yaml": test}))
	for _, r := range s.Run() {
		if !r.Passed {
			t.Errorf("%s: %+v", r.Case, r.Failures)
		}
	}
}

// --coverage lists the branch no case took.
func TestCoverageGap(t *testing.T) {
	test := `workflow: w.yaml
cases:
  - name: small only
    input: {amount: 1}
    activities:
      Notify: {result: x}
`
	dir := files(t, map[string]string{"w.yaml": approval, "w.test.yaml": test})
	r := RunPaths(dir)
	cov := r.Coverage()
	if len(cov) != 1 || len(cov[0].Gaps) != 1 {
		t.Fatalf("coverage %+v", cov)
	}
	g := cov[0].Gaps[0]
	if g.Kind != "branch" || !strings.Contains(g.What, "score > 100") || g.Pos.Line != lineOf(t, approval, "when: score > 100") {
		t.Errorf("gap %+v", g)
	}
	var out bytes.Buffer
	WriteCoverage(&out, cov)
	if !strings.Contains(out.String(), "w.yaml:15:9: branch decide#case0 (when: score > 100) never reached") {
		t.Errorf("coverage text:\n%s", out.String())
	}
	// The other case covers it, onTimeout included.
	test += `  - name: big, approved
    input: {amount: 100}
    activities:
      Notify: {result: x}
    events:
      - {after: 1s, name: Approved, data: true}
  - name: big, never approved
    input: {amount: 100}
    activities:
      Notify: {result: x}
`
	dir = files(t, map[string]string{"w.yaml": approval, "w.test.yaml": test})
	if cov := RunPaths(dir).Coverage(); len(cov[0].Gaps) != 0 {
		t.Errorf("gaps %+v", cov[0].Gaps)
	}
}

// --junit writes XML that parses, with a failure per unmet expectation.
func TestJUnitAndJSON(t *testing.T) {
	test := `workflow: w.yaml
cases:
  - name: ok
    input: {amount: 1}
    activities: {Notify: {result: x}}
    expect: {status: Completed}
  - name: "not <ok> & wrong"
    input: {amount: 1}
    activities: {Notify: {result: x}}
    expect: {status: Failed, output: 1}
`
	r := RunPaths(files(t, map[string]string{"w.yaml": approval, "w.test.yaml": test}))
	var buf bytes.Buffer
	if err := r.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name     string `xml:"name,attr"`
				Failures []struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("junit: %v\n%s", err, buf.String())
	}
	if doc.Tests != 2 || doc.Failures != 1 || len(doc.Suites) != 1 || doc.Suites[0].Cases[1].Name != "not <ok> & wrong" || len(doc.Suites[0].Cases[1].Failures) != 2 {
		t.Errorf("junit %+v", doc)
	}
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Passed bool
		Cases  []struct {
			Case     string
			Passed   bool
			Status   string
			Failures []Failure
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &js); err != nil || js.Passed || len(js.Cases) != 2 || !js.Cases[0].Passed || js.Cases[1].Status != "Completed" || js.Cases[1].Failures[0].Got != `"Completed"` {
		t.Errorf("json %v %+v", err, js)
	}
}

// A test file or workflow that cannot be read or linted is a LoadError
// located at file:line:col, and exit 2.
func TestLoadErrors(t *testing.T) {
	for name, c := range map[string]struct{ wf, test, want string }{
		"unknown field": {approval, "workflow: w.yaml\ncases:\n  - name: a\n    expct: {}\n", `w.test.yaml:4:5: error: unknown field "expct" in a case`},
		"bad status":    {approval, "workflow: w.yaml\ncases:\n  - name: a\n    expect: {status: Done}\n", `w.test.yaml:4:22: error: status "Done" is not a runtime status`},
		"no cases":      {approval, "workflow: w.yaml\n", "w.test.yaml:1:1: error: a test file needs cases"},
		"bad yaml":      {approval, "workflow: [\n", "w.test.yaml:1:1: error: invalid YAML"},
		"bad mock":      {approval, "workflow: w.yaml\ncases:\n  - name: a\n    activities: {Notify: {reslt: 1}}\n", `w.test.yaml:4:27: error: unknown field "reslt" in a mock`},
		"bad event":     {approval, "workflow: w.yaml\ncases:\n  - name: a\n    events: [{name: X}]\n", "w.test.yaml:4:14: error: an event needs after"},
		"lint error":    {strings.Replace(approval, "switch:", "swtich:", 1), "workflow: w.yaml\ncases:\n  - name: a\n", "w.yaml:14:5: error: unknown step kind"},
		"no workflow":   {approval, "workflow: nope.yaml\ncases:\n  - name: a\n", "nope.yaml: no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := files(t, map[string]string{"w.yaml": c.wf, "w.test.yaml": c.test})
			r := RunPaths(dir)
			if r.Exit() != 2 || len(r.Broken) != 1 || !strings.Contains(r.Broken[0], c.want) {
				t.Errorf("exit %d, broken %q, want %q", r.Exit(), r.Broken, c.want)
			}
		})
	}
	if r := RunPaths(t.TempDir()); r.Exit() != 2 {
		t.Errorf("no test files: exit %d", r.Exit())
	}
}

func TestParseMessage(t *testing.T) {
	m, err := ParseMessage(`10s:BookingConfirmed:{"a":1}`)
	if err != nil || m.After != 10*time.Second || m.Name != "BookingConfirmed" || string(m.Data) != `{"a":1}` {
		t.Errorf("%+v %v", m, err)
	}
	if m, err := ParseMessage("1h:Go"); err != nil || string(m.Data) != "null" {
		t.Errorf("%+v %v", m, err)
	}
	for _, bad := range []string{"Go", "x:Go:1", "1s::1", "1s:Go:{"} {
		if _, err := ParseMessage(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDiff(t *testing.T) {
	got := Diff("a\nb\nc", "a\nx\nc\nd")
	want := "  a\n- b\n+ x\n  c\n+ d\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}
