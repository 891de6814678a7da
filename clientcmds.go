package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cairnhq/cairn/internal/client"
)

const defaultServer = "http://127.0.0.1:8080"

// clientFlags adds --server to a client command and returns a func that
// makes the client once flags are parsed.
func (a *app) clientFlags(fs *flag.FlagSet) func() *client.Client {
	server := fs.String("server", a.env("CAIRN_SERVER", defaultServer), "cairn server base URL (env CAIRN_SERVER); the API key is read from CAIRN_API_KEY")
	return func() *client.Client {
		s := strings.TrimRight(*server, "/")
		if !strings.Contains(s, "://") {
			s = "http://" + s
		}
		return &client.Client{Server: s, Key: a.getenv("CAIRN_API_KEY")}
	}
}

// clientContext is cancelled by SIGINT/SIGTERM.
func clientContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func (a *app) start(args []string) int {
	fs := a.flagSet("start", "NAME [--id ID] [--input JSON|@file]", `
Start an instance of the deployed workflow NAME and print the check-status
payload (id and management URLs). Without --id the server picks an id.
--input is the instance input as JSON text, @FILE to read it from a file,
or @- to read standard input.`, `
  cairn start ReserveTicket --input '"user1"'
  cairn start ReserveTicket --id booking-42 --input @input.json
  echo '{"city":"Tokyo"}' | cairn start Trip --input @-`)
	id := fs.String("id", "", "instance id (default: chosen by the server)")
	input := fs.String("input", "", "input as JSON, @FILE or @- for stdin (default: none)")
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 1 {
		return a.usageError(fs, "want exactly one workflow NAME, got %d arguments", len(pos))
	}
	var body []byte
	if isSet(fs, "input") {
		if body, err = a.jsonArg("--input", *input); err != nil {
			fmt.Fprintf(a.stderr, "cairn start: %v\n", err)
			return exitUsage
		}
	}
	ctx, cancel := clientContext()
	defer cancel()
	out, err := mk().Start(ctx, pos[0], *id, body)
	return a.printResult(out, err)
}

func (a *app) status(args []string) int {
	fs := a.flagSet("status", "ID [--history]", `
Print the status of instance ID: runtimeStatus, customStatus, input,
output and times. Exits 1 when the instance does not exist.`, `
  cairn status booking-42
  cairn status booking-42 --history
  cairn status booking-42 | jq .customStatus`)
	history := fs.Bool("history", false, "include the history events")
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 1 {
		return a.usageError(fs, "want exactly one instance ID, got %d arguments", len(pos))
	}
	ctx, cancel := clientContext()
	defer cancel()
	out, err := mk().Status(ctx, pos[0], *history)
	return a.printResult(out, err)
}

func (a *app) raise(args []string) int {
	fs := a.flagSet("raise", "ID EVENT [JSON|@file]", `
Raise the external event EVENT into instance ID with an optional JSON
payload (default null): JSON text, @FILE, or @- for standard input. An
instance that is not waiting for EVENT yet buffers it.`, `
  cairn raise booking-42 BookingConfirmed true
  cairn raise booking-42 Approval '{"approved":true,"by":"ana"}'
  cairn raise booking-42 Document @doc.json`)
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) < 2 || len(pos) > 3 {
		return a.usageError(fs, "want ID EVENT [JSON], got %d arguments", len(pos))
	}
	var data []byte
	if len(pos) == 3 {
		if data, err = a.jsonArg("the event payload", pos[2]); err != nil {
			fmt.Fprintf(a.stderr, "cairn raise: %v\n", err)
			return exitUsage
		}
	}
	ctx, cancel := clientContext()
	defer cancel()
	if err := mk().Raise(ctx, pos[0], pos[1], data); err != nil {
		return a.fail(err)
	}
	fmt.Fprintf(a.stderr, "raised %s to %s\n", pos[1], pos[0])
	return exitOK
}

func (a *app) terminate(args []string) int {
	fs := a.flagSet("terminate", "ID [--reason TEXT]", `
Ask instance ID to stop. Termination is queued: the instance shows
Terminated once the engine has applied it (see cairn wait).`, `
  cairn terminate booking-42
  cairn terminate booking-42 --reason "customer cancelled"`)
	reason := fs.String("reason", "", "why it is terminated (kept as the instance output)")
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 1 {
		return a.usageError(fs, "want exactly one instance ID, got %d arguments", len(pos))
	}
	ctx, cancel := clientContext()
	defer cancel()
	if err := mk().Terminate(ctx, pos[0], *reason); err != nil {
		return a.fail(err)
	}
	fmt.Fprintf(a.stderr, "terminate requested for %s\n", pos[0])
	return exitOK
}

func (a *app) list(args []string) int {
	fs := a.flagSet("list", "[--status S,...] [--workflow W] [--prefix P] [--top N]", `
List instances as a JSON array (oldest first), following the server's
pages. --status filters on runtime statuses: Pending, Running, Suspended,
Completed, Failed, Terminated (comma list, or repeat the flag); --workflow
on the workflow's exact name. For how many there are per status, ask
GET /v1/stats instead of listing them all.`, `
  cairn list
  cairn list --status Running,Pending
  cairn list --workflow ReserveTicket --status Failed
  cairn list --prefix booking- --top 10 | jq -r '.[].instanceId'`)
	var statuses listFlag
	fs.Var(&statuses, "status", "only instances in these runtime statuses (comma list; repeatable)")
	prefix := fs.String("prefix", "", "only instance ids starting with this prefix")
	workflow := fs.String("workflow", "", "only instances of this workflow (its exact name)")
	top := fs.Int("top", 0, "at most this many instances (default: all)")
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 0 {
		return a.usageError(fs, "unexpected argument %q", pos[0])
	}
	if *top < 0 {
		return a.usageError(fs, "--top must be 0 or more")
	}
	ctx, cancel := clientContext()
	defer cancel()
	out, err := mk().List(ctx, client.ListQuery{Statuses: statuses, Prefix: *prefix, Workflow: *workflow, Limit: *top})
	return a.printResult(out, err)
}

func (a *app) wait(args []string) int {
	fs := a.flagSet("wait", "ID [--timeout D]", `
Wait until instance ID is Completed, Failed or Terminated. Each custom
status is printed as it changes, then the final status document. Exits 0
when the instance completed, 1 when it failed, was terminated, or the
wait timed out. Follows the server's status stream; falls back to polling.`, `
  cairn wait booking-42
  cairn wait booking-42 --timeout 2m`)
	timeout := fs.Duration("timeout", 0, "give up after this long (default: wait forever)")
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 1 {
		return a.usageError(fs, "want exactly one instance ID, got %d arguments", len(pos))
	}
	ctx, cancel := clientContext()
	defer cancel()
	if *timeout > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, *timeout)
		defer c2()
	}
	out, err := mk().Wait(ctx, pos[0], func(cs json.RawMessage) {
		a.printJSON(cs)
	})
	if errors.Is(err, context.DeadlineExceeded) && *timeout > 0 {
		fmt.Fprintf(a.stderr, "cairn: %s did not finish within %s\n", pos[0], *timeout)
		return exitFailure
	}
	if code := a.printResult(out, err); code != exitOK {
		return code
	}
	var st struct {
		RuntimeStatus string `json:"runtimeStatus"`
	}
	_ = json.Unmarshal(out, &st)
	if st.RuntimeStatus != "Completed" {
		fmt.Fprintf(a.stderr, "cairn: %s is %s\n", pos[0], st.RuntimeStatus)
		return exitFailure
	}
	return exitOK
}

// jsonArg reads a JSON argument: text, @FILE, or @- for stdin.
func (a *app) jsonArg(what, v string) ([]byte, error) {
	var b []byte
	switch {
	case v == "@-":
		var err error
		if b, err = io.ReadAll(a.stdin); err != nil {
			return nil, fmt.Errorf("reading %s from stdin: %w", what, err)
		}
	case strings.HasPrefix(v, "@"):
		var err error
		if b, err = os.ReadFile(v[1:]); err != nil {
			return nil, fmt.Errorf("reading %s: %w", what, err)
		}
	default:
		b = []byte(v)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty; for no value use null, for a string quote it: '\"text\"'", what)
	}
	if !json.Valid(b) {
		var x any
		err := json.Unmarshal(b, &x)
		return nil, fmt.Errorf("%s is not JSON (%v); a string must be quoted: '\"%s\"'", what, err, shorten(string(b)))
	}
	return b, nil
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// printResult prints out as indented JSON, or reports err.
func (a *app) printResult(out json.RawMessage, err error) int {
	if err != nil {
		return a.fail(err)
	}
	a.printJSON(out)
	return exitOK
}

// printJSON prints v indented; text that is not JSON is printed as is.
func (a *app) printJSON(v []byte) {
	var b bytes.Buffer
	if len(bytes.TrimSpace(v)) == 0 {
		return
	}
	if json.Indent(&b, v, "", "  ") != nil {
		a.stdout.Write(v)
		fmt.Fprintln(a.stdout)
		return
	}
	b.WriteByte('\n')
	a.stdout.Write(b.Bytes())
}

// fail reports a client error on stderr and returns exitFailure.
func (a *app) fail(err error) int {
	msg := err.Error()
	if errors.Is(err, client.ErrUnreachable) {
		msg += "\nIs `cairn serve` running? Set --server or CAIRN_SERVER to its URL."
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == 401 {
		msg += "\nSet CAIRN_API_KEY to one of the server's keys."
	}
	fmt.Fprintf(a.stderr, "cairn: %s\n", msg)
	return exitFailure
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// listFlag is a repeatable comma-list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

func (a *app) bulk(args []string) int {
	fs := a.flagSet("bulk", "terminate|suspend|resume|purge FILTER... [--dry-run]", `
Terminate, suspend, resume or purge every instance the filter selects
(--workflow, --status, --from, --to, --prefix; at least one), a page at a
time, printing each page's progress on stderr and the totals as JSON.
--dry-run counts and changes nothing. Terminate, suspend and resume are
queued: the instances change once the engine has applied them.`, `
  cairn bulk terminate --workflow ReserveTicket --dry-run
  cairn bulk terminate --workflow ReserveTicket --reason "bad release"
  cairn bulk purge --status Failed --to 2026-11-01T00:00:00Z`)
	var statuses listFlag
	fs.Var(&statuses, "status", "only instances in these runtime statuses (comma list; repeatable)")
	workflow := fs.String("workflow", "", "only instances of this workflow (its exact name)")
	from := fs.String("from", "", "only instances created at or after this RFC 3339 time")
	to := fs.String("to", "", "only instances created at or before this RFC 3339 time")
	prefix := fs.String("prefix", "", "only instance ids starting with this prefix")
	reason := fs.String("reason", "", "why (recorded with terminate, suspend and resume)")
	dry := fs.Bool("dry-run", false, "count the instances, change nothing")
	pageSize := fs.Int("page", 0, "instances per request, 1 to 1000 (default 1000)")
	mk := a.clientFlags(fs)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 1 {
		return a.usageError(fs, "want one operation (terminate, suspend, resume or purge), got %d arguments", len(pos))
	}
	switch pos[0] {
	case "terminate", "suspend", "resume", "purge":
	default:
		return a.usageError(fs, "unknown operation %q: terminate, suspend, resume or purge", pos[0])
	}
	if *workflow == "" && len(statuses) == 0 && *from == "" && *to == "" && *prefix == "" {
		return a.usageError(fs, "a bulk %s needs a filter: --workflow, --status, --from, --to or --prefix", pos[0])
	}
	if *pageSize < 0 || *pageSize > 1000 {
		return a.usageError(fs, "--page must be from 1 to 1000")
	}
	ctx, cancel := clientContext()
	defer cancel()
	q := client.BulkQuery{Workflow: *workflow, Statuses: statuses, CreatedFrom: *from, CreatedTo: *to,
		Prefix: *prefix, Reason: *reason, DryRun: *dry, PageSize: *pageSize}
	sum, err := mk().Bulk(ctx, pos[0], q, func(p client.BulkResult) {
		if !p.DryRun {
			fmt.Fprintf(a.stderr, "%s: %d matched, %d applied, %d skipped\n", p.Operation, p.Matched, p.Applied, p.Skipped)
		}
	})
	if err != nil {
		return a.fail(err)
	}
	out, _ := json.Marshal(sum)
	a.printJSON(out)
	return exitOK
}
