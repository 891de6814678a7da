package main

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// offline runs a command in process, as the binary would.
func offline(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := a.main(args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// cairn test workflows/ passes: every example's cases, under make test.
func TestCairnTestWorkflows(t *testing.T) {
	r := offline(t, "test", "--coverage", "workflows/")
	if r.code != 0 || !strings.Contains(r.stdout, "PASS: ") || strings.Count(r.stdout, "\nok   ") < 20 || strings.Contains(r.stdout, "not reached") {
		t.Fatalf("cairn test workflows/: %s", r)
	}
}

// A deliberately wrong expectation fails the run with the case's name, the
// expectation's file:line and a diff; --junit still writes its report.
func TestCairnTestWrongExpectation(t *testing.T) {
	src, err := os.ReadFile("workflows/tests/reserve-ticket.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wf, _ := filepath.Abs("workflows/reserve-ticket.yaml")
	test := strings.Replace(string(src), "workflow: ../reserve-ticket.yaml", "workflow: "+wf, 1)
	test = strings.Replace(test, "    expect:\n      output: false\n", "    expect:\n      output: true\n", 1) // "confirmed too late"
	dir := t.TempDir()
	file := filepath.Join(dir, "wrong.test.yaml")
	if err := os.WriteFile(file, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(test, "\n") {
		if l == "      output: true" && strings.Contains(strings.Join(strings.Split(test, "\n")[:i], "\n"), "confirmed too late") && line == 0 {
			line = i + 1
		}
	}
	junit := filepath.Join(dir, "report.xml")
	r := offline(t, "test", "--junit", junit, dir)
	for _, want := range []string{
		"FAIL " + file + ":30: confirmed too late",
		file + ":" + strconv.Itoa(line) + ": output: want true, got false",
		"FAIL: 5 cases, 4 passed, 1 failed",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in %s", want, r)
		}
	}
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	x, err := os.ReadFile(junit)
	var doc struct {
		Failures int `xml:"failures,attr"`
	}
	if err != nil || xml.Unmarshal(x, &doc) != nil || doc.Failures != 1 {
		t.Errorf("junit %v %+v:\n%s", err, doc, x)
	}
}

// A workflow that does not lint is exit 2 with its file:line:col.
func TestCairnTestLintError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.yaml"), []byte(broken), 0o644)
	os.WriteFile(filepath.Join(dir, "w.test.yaml"), []byte("workflow: w.yaml\ncases:\n  - name: a\n"), 0o644)
	r := offline(t, "test", dir)
	if r.code != 2 || !strings.Contains(r.stdout, filepath.Join(dir, "w.yaml")+":4:5: error: unknown step kind") {
		t.Errorf("lint error: %s", r)
	}
	if r := offline(t, "test", t.TempDir()); r.code != 2 {
		t.Errorf("no test files: %s", r)
	}
	if r := offline(t, "test", "--format", "xml", dir); r.code != 2 {
		t.Errorf("bad format: %s", r)
	}
}

func TestCairnRun(t *testing.T) {
	r := offline(t, "run", "workflows/reserve-ticket.yaml", "--input", `"user1"`, "--event", "10s:BookingConfirmed:true")
	for _, want := range []string{"+0s  offer", `status {"bookingUrl":"https://example.com/book/user1","discount":20,"discountTimeout":60}`, "+10s  -", "event BookingConfirmed true", "Completed after 10s of virtual time, output true"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in %s", want, r)
		}
	}
	if r.code != 0 {
		t.Errorf("exit %d", r.code)
	}
	// A day later: the 60 s timeout has long fired.
	r = offline(t, "run", "workflows/city-recommender.yaml", "--input", "2", "--event", `24h:CitySelected:"London"`)
	if r.code != 0 || !strings.Contains(r.stdout, `Completed after 24h0m0s of virtual time, output "London"`) {
		t.Errorf("city: %s", r)
	}
	dir := t.TempDir()
	wf := filepath.Join(dir, "w.yaml")
	os.WriteFile(wf, []byte("name: W\nsteps:\n  - activity: Ship\n    result: s\n  - return: ${ s }\n"), 0o644)
	if r := offline(t, "run", wf); r.code != 1 || !strings.Contains(r.stderr, "activity Ship") {
		t.Errorf("unmocked: %s", r)
	}
	if r := offline(t, "run", wf, "--mock", `Ship:{"a":1,"b":2}`); r.code != 0 || !strings.Contains(r.stdout, `output {"a":1,"b":2}`) {
		t.Errorf("mocked: %s", r)
	}
	if r := offline(t, "run", wf, "--event", "soon:X"); r.code != 2 {
		t.Errorf("bad event: %s", r)
	}
}
