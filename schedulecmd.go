package main

// cairn schedules list|get|pause|resume|trigger: the client of /v1/schedules.

import (
	"encoding/json"
)

func (a *app) schedules(args []string) int {
	fs := a.flagSet("schedules", "list | get ID | pause ID | resume ID | trigger ID", `
List the deployed schedules, show one with its next runs, pause or resume
one (until the next deployment of its workflow), or trigger one run now
(subject to its overlap policy). Prints the API's JSON.`, `
  cairn schedules list
  cairn schedules get nightly-report
  cairn schedules pause nightly-report
  cairn schedules trigger nightly-report`)
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) == 0 {
		return a.usageError(fs, "want a subcommand: list, get, pause, resume or trigger")
	}
	sub, rest := pos[0], pos[1:]
	ctx, cancel := clientContext()
	defer cancel()
	var out json.RawMessage
	switch sub {
	case "list":
		if len(rest) != 0 {
			return a.usageError(fs, "list takes no arguments")
		}
		out, err = mk().Schedules(ctx)
	case "get", "pause", "resume", "trigger":
		if len(rest) != 1 {
			return a.usageError(fs, "%s wants exactly one schedule ID, got %d arguments", sub, len(rest))
		}
		if sub == "get" {
			out, err = mk().Schedule(ctx, rest[0])
		} else {
			out, err = mk().ScheduleAction(ctx, rest[0], sub)
		}
	default:
		return a.usageError(fs, "unknown subcommand %q: use list, get, pause, resume or trigger", sub)
	}
	return a.printResult(out, err)
}
