package web

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
)

func parse(t *testing.T, file string, src []byte) *dsl.Workflow {
	t.Helper()
	wf, err := dsl.Parse(file, src)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return wf
}

func parseFile(t *testing.T, path string) *dsl.Workflow {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, filepath.Base(path), src)
}

// outline writes a graph as one line per step: indent, id, kind, label,
// detail; blocks as "[kind label]".
func outline(g *Graph) string {
	var sb strings.Builder
	var walk func(ns []*Node, ind string)
	walk = func(ns []*Node, ind string) {
		for _, n := range ns {
			sb.WriteString(ind + n.ID + " " + n.Kind + " " + n.Label)
			if n.Detail != "" {
				sb.WriteString(" | " + n.Detail)
			}
			if n.If != "" {
				sb.WriteString(" | if " + n.If)
			}
			sb.WriteString("\n")
			for _, b := range n.Blocks {
				sb.WriteString(ind + "  [" + b.Kind + " " + b.Label + " " + b.ID + "]\n")
				walk(b.Steps, ind+"    ")
			}
		}
	}
	walk(g.Steps, "")
	return sb.String()
}

func TestGraphReserveTicket(t *testing.T) {
	wf := parseFile(t, "../workflows/reserve-ticket.yaml")
	g := BuildGraph(wf)
	if g.Name != "ReserveTicket" || g.Hash != wf.Hash || g.Description == "" {
		t.Fatalf("header: %+v", g)
	}
	want := `discount activity CalculateDiscount | result → discount · timeout 30s
offer setStatus setStatus | discount: ${ discount }, discountTimeout: 60, bookingUrl: https://example.com/book/${ inp…
confirmation wait BookingConfirmed | timeout 60s · result → confirmed
  [onTimeout on timeout confirmation#onTimeout]
    confirmation.onTimeout[0] set set | confirmed = false
outcome switch switch | 1 case + default
  [case when confirmed == true outcome#case0]
    outcome.case[0][0] setStatus setStatus | {"message":"Thank you for confirming your booking."}
  [default default outcome#default]
    outcome.default[0] setStatus setStatus | {"message":"The booking was not confirmed on time. Please try again."}
steps[4] return return | ${ confirmed == true }
`
	if got := outline(g); got != want {
		t.Fatalf("outline:\n%s\nwant:\n%s", got, want)
	}
	// Block ids are the model's, so the interpreter's cursor frames and
	// the pages agree.
	for id := range wf.Blocks {
		if id != "" && !strings.Contains(outline(g), string(id)+"]") {
			t.Errorf("block %q is not in the graph", id)
		}
	}
	// Positions point at the steps in the source.
	if p := g.Steps[2].Pos; p.Line != 31 || p.Col != 5 {
		t.Errorf("confirmation at %v, want 31:5", p)
	}
	if !strings.HasPrefix(g.Steps[2].Source, "id: confirmation\nwait:\n  event: BookingConfirmed") {
		t.Errorf("source of confirmation = %q", g.Steps[2].Source)
	}
}

// Every example and every valid fixture of the language: each step is a
// node, once.
func TestGraphEveryExample(t *testing.T) {
	files, _ := filepath.Glob("../workflows/*.yaml")
	fixtures, _ := filepath.Glob("../dsl/testdata/valid/*.yaml")
	files = append(files, fixtures...)
	if len(files) == 0 {
		t.Fatal("no example workflows")
	}
	for _, f := range files {
		wf := parseFile(t, f)
		g := BuildGraph(wf)
		// Every step of the model is a node, once.
		seen := map[string]int{}
		var walk func([]*Node)
		walk = func(ns []*Node) {
			for _, n := range ns {
				seen[n.ID]++
				if n.Kind == "" || n.Pos.Line == 0 {
					t.Errorf("%s: node %+v", f, n)
				}
				for _, b := range n.Blocks {
					walk(b.Steps)
				}
			}
		}
		walk(g.Steps)
		for id := range wf.ByID {
			if seen[string(id)] != 1 {
				t.Errorf("%s: step %s appears %d times", f, id, seen[string(id)])
			}
		}
		if _, err := json.Marshal(g); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGraphKinds(t *testing.T) {
	src := `name: Kinds
activities:
  Charge:
    retry: {maxAttempts: 4, firstInterval: 1s}
steps:
  - id: pay
    activity: Charge
    input: ${ input }
    onError:
      - fail: {error: PaymentFailed, message: "could not charge ${ input }"}
  - wait: {duration: 90s}
  - if: input > 2
    wait: {until: "${ now() }"}
  - set: {a: 1, b: "${ input + 1 }"}
  - return: null
`
	g := BuildGraph(parse(t, "kinds.yaml", []byte(src)))
	want := `pay activity Charge | 4 attempts
  [onError on error pay#onError]
    pay.onError[0] fail fail | PaymentFailed: could not charge ${ input }
steps[1] timer 90s
steps[2] timer until ${ now() } | if input > 2
steps[3] set set | a = 1, b = ${ input + 1 }
steps[4] return return
`
	if got := outline(g); got != want {
		t.Fatalf("outline:\n%s\nwant:\n%s", got, want)
	}
}

func TestGraphFlowKinds(t *testing.T) {
	g := BuildGraph(parseFile(t, "../dsl/testdata/valid/flow.yaml"))
	want := `steps[0] set set | attempt = 0, done = false
poll while !done | at most 50 times
  [body repeat poll#body]
    poll.steps[0] set set | attempt = ${ attempt + 1 }
    poll.steps[1] activity CheckPayment | result → payment
    poll.steps[2] set set | done = ${ payment.settled }
    poll.steps[3] timer 1m | if !done
  [onError on error poll#onError]
    poll.onError[0] fail fail | PaymentUnknown: ${ error.message }
steps[2] try try
  [body steps steps[2]#try]
    steps[2].steps[0] activity Reserve | result → reservation
    steps[2].steps[1] fail fail | OutOfStock: Nothing left. | if reservation == nil
  [catch catch OutOfStock, ActivityFailed as problem steps[2]#catch]
    steps[2].catch[0] setStatus setStatus | {problem: "${ problem.type }", step: "${ problem.step }"}
    steps[2].catch[1] set set | reservation = null
decide wait any of Approved, Rejected | timeout 2h · result → decision
  [onTimeout on timeout decide#onTimeout]
    decide.onTimeout[0] set set | decision = {"data":null,"event":"Rejected"}
steps[4] wait all of Signed, Paid | timeout ${ decision.event == 'Approved' ? '1h' : '1s' } · result → papers
  [onTimeout on timeout steps[4]#onTimeout]
    steps[4].onTimeout[0] setStatus setStatus | {missing: "${ papers }"}
notify set set | message = ${ upper(decision.event) }
  [onError on error notify#onError]
    notify.onError[0] set set | message = ?
steps[6] return return | {decision: "${ decision }", papers: "${ papers }", message: "${ message }", reservation: …
`
	if got := outline(g); got != want {
		t.Fatalf("outline:\n%s\nwant:\n%s", got, want)
	}
}

func TestSnippet(t *testing.T) {
	g := &graphBuilder{lines: splitLines([]byte("steps:\n  - id: a\n    # note\n    set: {x: 1}\n\n  - id: b\n    switch:\n      - when: x\n"))}
	if got := g.snippet(dsl.Pos{Line: 2, Col: 5}, 5); got != "id: a\nset: {x: 1}" {
		t.Errorf("snippet = %q", got)
	}
	if got := g.snippet(dsl.Pos{Line: 6, Col: 5}, 1); got != "id: b\n…" {
		t.Errorf("clipped snippet = %q", got)
	}
	for _, p := range []dsl.Pos{{}, {Line: 99, Col: 1}, {Line: 1, Col: 99}} {
		if got := g.snippet(p, 3); got != "" {
			t.Errorf("snippet at %v = %q, want empty", p, got)
		}
	}
	if got := clip("héllo wörld", 6); got != "héllo…" {
		t.Errorf("clip = %q", got)
	}
}
