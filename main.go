// Command cairn runs the cairn workflow engine and talks to it.
//
// cairn serve runs the HTTP API and the engine against Redis; cairn lint and
// cairn schema check workflow files; cairn test and cairn run simulate them
// offline; start, status, raise, terminate, list
// and wait are clients of a running server. Run "cairn help" for the list
// and "cairn COMMAND --help" for each command's flags and examples.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (lint problems, API error)
	exitUsage   = 2 // bad flags or arguments, unreadable input
)

// app carries the process's streams and environment, so commands can be
// run in tests without a subprocess.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(a *app, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "[flags]", "run the HTTP API and the engine (starts a private redis-server unless --redis)", (*app).serve},
		{"lint", "[--format text|json] PATH...", "check workflow files or folders of *.yaml", (*app).lint},
		{"schema", "", "print the JSON Schema of the workflow language", (*app).schema},
		{"test", "[--coverage] [--junit FILE] PATH...", "run *.test.yaml files offline, on a virtual clock with mocked activities", (*app).test},
		{"run", "FILE [--input JSON] [--event AFTER:NAME:JSON]...", "simulate one instance offline and print its timeline", (*app).runOffline},
		{"start", "NAME [--id ID] [--input JSON|@file]", "start an instance of a workflow", (*app).start},
		{"status", "ID [--history]", "print an instance's status", (*app).status},
		{"raise", "ID EVENT [JSON|@file]", "raise an external event into an instance", (*app).raise},
		{"terminate", "ID [--reason TEXT]", "terminate an instance", (*app).terminate},
		{"list", "[--status S,...] [--workflow W] [--prefix P] [--top N]", "list instances", (*app).list},
		{"bulk", "terminate|suspend|resume|purge FILTER... [--dry-run]", "terminate, suspend, resume or purge the instances a filter selects", (*app).bulk},
		{"schedules", "list | get ID | pause ID | resume ID | trigger ID", "list, show, pause, resume or trigger schedules", (*app).schedules},
		{"wait", "ID [--timeout D]", "wait for an instance to finish, printing each custom status", (*app).wait},
	}
}

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(a.main(os.Args[1:]))
}

func (a *app) main(args []string) int {
	if len(args) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "cairn help start" = "cairn start --help"
			return a.main([]string{args[1], "--help"})
		}
		a.usage(a.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(a, args[1:])
		}
	}
	fmt.Fprintf(a.stderr, "cairn: unknown command %q\n\n", name)
	a.usage(a.stderr)
	return exitUsage
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `cairn — durable workflows in YAML, run against Redis, driven over HTTP.

usage: cairn COMMAND [flags] [args]

commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "cairn COMMAND --help" for a command's flags and examples.

The client commands (start, status, raise, terminate, list, wait) talk to
--server / CAIRN_SERVER (default http://127.0.0.1:8080) and send the key in
CAIRN_API_KEY as x-functions-key.
`)
}

// flagSet makes a subcommand's flag set whose --help shows the synopsis,
// the description, the flags and the examples.
func (a *app) flagSet(name, synopsis, description, examples string) *flag.FlagSet {
	fs := flag.NewFlagSet("cairn "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are reported by parse
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: cairn %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(description))
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprint(w, "\nflags:\n")
			fs.PrintDefaults()
		}
		if examples != "" {
			fmt.Fprintf(w, "\nexamples:\n%s\n", strings.Trim(examples, "\n"))
		}
	}
	return fs
}

// errHelp means --help was asked for and shown.
var errHelp = errors.New("help shown")

// parse parses flags that may come before, between or after the positional
// arguments ("cairn start ReserveTicket --input 1"), until "--". It shows
// the help on --help, and reports a bad flag with the usage on stderr.
// Callers return exitOK for errHelp and exitUsage for any other error.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	for _, arg := range args {
		if arg == "--" {
			break
		}
		if arg == "-h" || arg == "-help" || arg == "--help" {
			fs.SetOutput(a.stdout)
			fs.Usage()
			return nil, errHelp
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			fmt.Fprintf(a.stderr, "%s: %v\n\n", fs.Name(), err)
			fs.SetOutput(a.stderr)
			fs.Usage()
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError reports wrong positional arguments and returns exitUsage.
func (a *app) usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(a.stderr, "%s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.SetOutput(a.stderr)
	fs.Usage()
	return exitUsage
}

// parseExit maps a parse error to the exit code.
func parseExit(err error) int {
	if errors.Is(err, errHelp) {
		return exitOK
	}
	return exitUsage
}

// env returns the variable's value, or def when it is unset or empty.
func (a *app) env(name, def string) string {
	if v := a.getenv(name); v != "" {
		return v
	}
	return def
}

// splitList splits a comma list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
