package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Result is how one case went.
type Result struct {
	File     string    `json:"file"`
	Line     int       `json:"line"`
	Case     string    `json:"case"`
	Workflow string    `json:"workflow"`
	Passed   bool      `json:"passed"`
	Failures []Failure `json:"failures,omitempty"`
	// Virtual is the simulated duration, Elapsed the real time it took.
	Virtual time.Duration `json:"-"`
	Elapsed time.Duration `json:"-"`
	Run     *Run          `json:"-"`
}

// Failure is one expectation a case did not meet (Field "run" when the
// simulation itself could not go on).
type Failure struct {
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
	Want    string `json:"want,omitempty"` // JSON
	Got     string `json:"got,omitempty"`  // JSON
	Diff    string `json:"diff,omitempty"`
}

// Run runs every case of the suite.
func (s *Suite) Run() []Result {
	out := make([]Result, 0, len(s.Cases))
	for _, c := range s.Cases {
		out = append(out, s.RunCase(c))
	}
	return out
}

// RunCase simulates one case and checks its expectations.
func (s *Suite) RunCase(c *Case) Result {
	cfg := c.Config
	cfg.Workflow = s.Workflow
	cfg.Child = s.lib.child
	t0 := time.Now()
	run := Simulate(cfg)
	res := Result{File: s.File, Line: c.Line, Case: c.Name, Workflow: s.Workflow.File, Run: run, Virtual: run.Duration, Elapsed: time.Since(t0)}
	if run.Problem != "" {
		res.Failures = append(res.Failures, Failure{Line: c.Line, Field: "run", Message: run.Problem})
	} else {
		for _, e := range c.Expect {
			if f := check(e, run); f != nil {
				res.Failures = append(res.Failures, *f)
			}
		}
	}
	res.Passed = len(res.Failures) == 0
	return res
}

// check compares one expectation with the run.
func check(e Expectation, run *Run) *Failure {
	var want, got any
	switch e.Field {
	case "status":
		want, got = e.Want, string(run.Status)
	case "output":
		want, got = e.Want, decode(run.Output)
	case "customStatus":
		want = e.Want
		list := make([]any, 0, len(run.Statuses))
		for _, s := range run.Statuses {
			list = append(list, decode(s))
		}
		got = list
	case "duration":
		w := e.Want.(time.Duration)
		if w == run.Duration {
			return nil
		}
		return &Failure{Line: e.Line, Field: e.Field, Message: fmt.Sprintf("duration: want %s of virtual time, got %s", w, run.Duration), Want: fmt.Sprintf("%q", w), Got: fmt.Sprintf("%q", run.Duration)}
	case "error":
		w := e.Want.(ErrorWant)
		info := run.Error()
		if info == nil {
			return &Failure{Line: e.Line, Field: e.Field, Message: fmt.Sprintf("error: want a failure of type %s, got status %s (output %s)", w.Type, run.Status, orNull(run.Output))}
		}
		if (w.Type == "" || info.Type == w.Type) && strings.Contains(info.Message, w.Message) {
			return nil
		}
		want = map[string]any{"type": w.Type, "message": w.Message}
		got = map[string]any{"type": info.Type, "message": info.Message}
		if w.Message == "" {
			want, got = w.Type, info.Type
		}
		f := failure(e, want, got)
		if w.Message != "" {
			f.Message = fmt.Sprintf("error: want type %s with a message containing %q, got %s: %s", w.Type, w.Message, info.Type, info.Message)
		}
		return f
	default: // calls.NAME
		name := strings.TrimPrefix(e.Field, "calls.")
		want, got = float64(e.Want.(int)), float64(run.Calls[name])
	}
	if jsonEqual(want, got) {
		return nil
	}
	return failure(e, want, got)
}

func failure(e Expectation, want, got any) *Failure {
	w, g := pretty(want), pretty(got)
	f := &Failure{Line: e.Line, Field: e.Field, Want: compact(want), Got: compact(got)}
	if strings.Contains(w, "\n") || strings.Contains(g, "\n") {
		f.Message = e.Field + ": want and got differ"
		f.Diff = Diff(w, g)
	} else {
		f.Message = fmt.Sprintf("%s: want %s, got %s", e.Field, w, g)
	}
	return f
}

func decode(raw json.RawMessage) any {
	var v any
	_ = json.Unmarshal(raw, &v)
	return v
}

func orNull(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	return string(raw)
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Diff is a line diff of want and got: unchanged lines indented by two
// spaces, lines only in want marked "- ", lines only in got "+ ".
func Diff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// lcs[i][j] is the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			sb.WriteString("  " + a[i] + "\n")
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			sb.WriteString("- " + a[i] + "\n")
			i++
		default:
			sb.WriteString("+ " + b[j] + "\n")
			j++
		}
	}
	return sb.String()
}
