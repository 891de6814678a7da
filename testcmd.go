package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cairnhq/cairn/sim"
)

// The offline commands: cairn test and cairn run simulate instances with
// the real interpreter and a virtual clock (package sim); no Redis, no
// server.

func (a *app) test(args []string) int {
	fs := a.flagSet("test", "[--format text|json] [--junit FILE] [--coverage] [-v] PATH...", `
Run workflow test files offline: each case starts an instance of the file's
workflow with the real interpreter over an in-memory store and a virtual
clock (a day's wait takes a millisecond), answers its activities from the
case's mocks (expr bindings run their expression unless mocked), sends its
events at their virtual times, and checks what it expects. A PATH is a
*.test.yaml file, or a folder whose *.test.yaml files (recursively) run.
The format is in docs/testing.md.
Exit status: 0 every case passed, 1 a case failed, 2 bad usage or a file
that could not be read, parsed or linted.`, `
  cairn test workflows/
  cairn test --coverage workflows/tests/reserve-ticket.test.yaml
  cairn test --junit report.xml --format json workflows/ > report.json`)
	format := fs.String("format", "text", "output format: text or json")
	junit := fs.String("junit", "", "also write a JUnit XML report to this `file`")
	coverage := fs.Bool("coverage", false, "list the steps and branches of the tested workflows that no case reached")
	verbose := fs.Bool("v", false, "print every case's timeline")
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if *format != "text" && *format != "json" {
		return a.usageError(fs, "--format must be text or json, not %q", *format)
	}
	if len(pos) == 0 {
		return a.usageError(fs, "want at least one test file or folder")
	}
	r := sim.RunPaths(pos...)
	if r.Files == 0 && len(r.Broken) == 0 {
		r.Broken = append(r.Broken, fmt.Sprintf("no *.test.yaml files in %s", strings.Join(pos, " ")))
	}
	if *format == "json" {
		if err := r.WriteJSON(a.stdout); err != nil {
			fmt.Fprintf(a.stderr, "cairn test: %v\n", err)
		}
		for _, b := range r.Broken {
			fmt.Fprintln(a.stderr, b)
		}
	} else {
		r.WriteText(a.stdout, *verbose)
	}
	if *coverage {
		w := a.stdout
		if *format == "json" {
			w = a.stderr
		}
		sim.WriteCoverage(w, r.Coverage())
	}
	if *junit != "" {
		if err := writeJUnit(*junit, r); err != nil {
			fmt.Fprintf(a.stderr, "cairn test: %v\n", err)
			return exitUsage
		}
	}
	return r.Exit()
}

func writeJUnit(file string, r *sim.Report) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := r.WriteJUnit(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// repeatFlag collects a repeated flag's values as given (listFlag would
// split the JSON in them at its commas).
type repeatFlag []string

func (l *repeatFlag) String() string     { return strings.Join(*l, " ") }
func (l *repeatFlag) Set(v string) error { *l = append(*l, v); return nil }

func (a *app) runOffline(args []string) int {
	fs := a.flagSet("run", "FILE [--input JSON|@file] [--event AFTER:NAME:JSON]... [--mock NAME:JSON]...", `
Simulate one instance of a workflow offline, as cairn test does, and print
its timeline: virtual time, step and what happened (statuses set, timers,
activity calls and results, events, the output). Expr-bound activities run
their expression; give every other activity a result with --mock. A call
step runs the workflow of that name from FILE's folder.
Exit status: 0 the instance ran (whatever its end), 1 it could not go on
(an activity without a mock, say), 2 bad usage or a workflow that does not
lint clean.`, `
  cairn run workflows/reserve-ticket.yaml --input '"user1"' --event 10s:BookingConfirmed:true
  cairn run workflows/city-recommender.yaml --input 2 --event 1m:CitySelected:'"London"'
  cairn run my-flow.yaml --input @order.json --mock ChargeCard:'{"id":"ch_1"}'`)
	input := fs.String("input", "", "the instance's input: JSON, @FILE or @- (default null)")
	stop := fs.Duration("stop-after", 0, "end the simulation at this virtual time even if the instance could go on")
	var events, mocks repeatFlag
	fs.Var(&events, "event", "raise event NAME with payload JSON at virtual time AFTER since the start (repeatable)")
	fs.Var(&mocks, "mock", "activity NAME returns JSON on every call (repeatable)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 1 {
		return a.usageError(fs, "want one workflow file")
	}
	cfg := sim.Config{StopAfter: *stop, Activities: map[string]*sim.Mocks{}}
	if *input != "" {
		if cfg.Input, err = a.jsonArg("--input", *input); err != nil {
			return a.usageError(fs, "%v", err)
		}
	}
	for _, e := range events {
		m, err := sim.ParseMessage(e)
		if err != nil {
			return a.usageError(fs, "--event %s: %v", e, err)
		}
		cfg.Messages = append(cfg.Messages, m)
	}
	for _, m := range mocks {
		name, raw, ok := strings.Cut(m, ":")
		if !ok || name == "" || !json.Valid([]byte(raw)) {
			return a.usageError(fs, "--mock %s: want NAME:JSON, e.g. ChargeCard:'{\"id\":1}'", m)
		}
		cfg.Activities[name] = &sim.Mocks{Every: true, Calls: []sim.Mock{{Result: json.RawMessage(raw)}}}
	}
	def, child, err := sim.LoadWorkflow(pos[0])
	if err != nil {
		var le *sim.LoadError
		if errors.As(err, &le) {
			fmt.Fprint(a.stderr, ensureNewline(le.Text))
		} else {
			fmt.Fprintf(a.stderr, "cairn run: %v\n", err)
		}
		return exitUsage
	}
	cfg.Workflow, cfg.Child = def, child
	run := sim.Simulate(cfg)
	sim.WriteTimeline(a.stdout, run)
	if run.Problem != "" {
		fmt.Fprintf(a.stderr, "cairn run: %s\n", run.Problem)
		return exitFailure
	}
	return exitOK
}
