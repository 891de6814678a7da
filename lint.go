package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/schema"
	"github.com/cairnhq/cairn/sim"
)

func (a *app) lint(args []string) int {
	fs := a.flagSet("lint", "[--format text|json] PATH...", `
Check workflow files against the language: the JSON Schema, step rules and
every expression. A PATH is a file, or a folder whose *.yaml and *.yml files
(recursively) are checked. Problems are reported as file:line:col.
Exit status: 0 no errors (warnings allowed), 1 errors found, 2 bad usage
or an unreadable path.`, `
  cairn lint workflows/
  cairn lint workflows/reserve-ticket.yaml
  cairn lint --format json workflows/ | jq '.[] | select(.severity == "error")'`)
	format := fs.String("format", "text", "output format: text or json")
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if *format != "text" && *format != "json" {
		return a.usageError(fs, "--format must be text or json, not %q", *format)
	}
	if len(pos) == 0 {
		return a.usageError(fs, "want at least one file or folder")
	}
	files, err := workflowFiles(pos...)
	code := exitOK
	if err != nil {
		fmt.Fprintf(a.stderr, "cairn lint: %v\n", err)
		code = exitUsage
	}
	var all dsl.Issues
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(a.stderr, "cairn lint: %v\n", err)
			code = exitUsage
			continue
		}
		issues := schema.Lint(f, src)
		if *format == "text" && len(issues) > 0 {
			fmt.Fprint(a.stdout, ensureNewline(schema.FormatText(issues, src)))
		}
		all = append(all, issues...)
	}
	if *format == "json" {
		if all == nil {
			all = dsl.Issues{}
		}
		fmt.Fprint(a.stdout, ensureNewline(string(schema.FormatJSON(all))))
	}
	if code == exitOK && all.HasErrors() {
		code = exitFailure
	}
	if *format == "text" && len(files) > 0 {
		errs, warns := count(all)
		fmt.Fprintf(a.stderr, "%s checked: %s, %s\n", plural(len(files), "file"), plural(errs, "error"), plural(warns, "warning"))
	}
	return code
}

func (a *app) schema(args []string) int {
	fs := a.flagSet("schema", "", `
Print the JSON Schema of the workflow language. Editors use it for
completion and checks: put this first line in a workflow file
  # yaml-language-server: $schema=path/to/workflow.schema.json`, `
  cairn schema > workflow.schema.json`)
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 0 {
		return a.usageError(fs, "unexpected argument %q", pos[0])
	}
	fmt.Fprint(a.stdout, ensureNewline(string(schema.JSON())))
	return exitOK
}

// workflowFiles expands paths: a file stands for itself, a folder for its
// *.yaml and *.yml files (recursively, skipping hidden folders and the
// *.test.yaml files of cairn test), sorted. It
// returns what it found even when some path is unreadable.
func workflowFiles(paths ...string) ([]string, error) {
	return sim.FindFiles(func(path string) bool {
		ext := filepath.Ext(path)
		return (ext == ".yaml" || ext == ".yml") && !sim.IsTestFile(path)
	}, paths...)
}

func count(is dsl.Issues) (errs, warns int) {
	for _, i := range is {
		if i.Severity == dsl.SevWarning {
			warns++
		} else {
			errs++
		}
	}
	return errs, warns
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func ensureNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}
