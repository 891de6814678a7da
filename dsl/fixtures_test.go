package dsl

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/{invalid,warning}/*.golden from the parser's output")

// TestInvalidFixtures parses each testdata/invalid/*.yaml and compares every
// issue line with its .golden file. Each fixture is one mistake, described
// on its first line.
func TestInvalidFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("want at least 40 invalid fixtures, have %d", len(files))
	}
	codes := map[string]string{}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			wf, err := Parse(file, src)
			if err == nil {
				t.Fatalf("Parse accepted an invalid workflow")
			}
			if wf != nil {
				t.Errorf("Parse returned a workflow along with errors")
			}
			var issues Issues
			if !errors.As(err, &issues) {
				t.Fatalf("error is %T, want Issues", err)
			}
			got := issues.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("no golden file (run go test ./dsl -run TestInvalidFixtures -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("issues differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			for _, is := range issues {
				if is.Pos.Line < 1 || is.Pos.Col < 1 {
					t.Errorf("issue without a position: %v", is)
				}
			}
			codes[issues[0].Code] = file
		})
	}
	t.Logf("%d fixtures, %d distinct leading codes", len(files), len(codes))
}

// TestWarningFixtures parses each testdata/warning/*.yaml: a workflow that
// runs, so Parse returns it with no error, and whose Warnings match its
// .golden file.
func TestWarningFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "warning", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least 5 warning fixtures, have %d", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			wf, err := Parse(file, src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(wf.Warnings) == 0 {
				t.Fatal("no warning")
			}
			for _, w := range wf.Warnings {
				if w.Severity != SevWarning {
					t.Errorf("%v is not a warning", w)
				}
			}
			got := wf.Warnings.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("no golden file (run go test ./dsl -run TestWarningFixtures -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("warnings differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestValidFixtures parses each testdata/valid/*.yaml without any issue.
func TestValidFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no valid fixtures")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			wf, err := Parse(file, src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(wf.Warnings) > 0 {
				t.Errorf("warnings in a valid fixture:\n%v", wf.Warnings)
			}
			checkModel(t, wf)
		})
	}
}

// TestWorkflows parses every example in workflows/ without any issue.
func TestWorkflows(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "workflows", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("want the four example workflows, found %d", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(src), "# yaml-language-server: $schema=../schema/workflow.schema.json\n") {
				t.Errorf("the first line must point editors at the schema")
			}
			wf, err := Parse(file, src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(wf.Warnings) > 0 {
				t.Errorf("an example must lint clean, but has warnings:\n%v", wf.Warnings)
			}
			checkModel(t, wf)
		})
	}
}

// checkModel checks the invariants of a parsed workflow: every step is in
// ByID under its id, every list is in Blocks, nested block ids follow the
// documented naming.
func checkModel(t *testing.T, wf *Workflow) {
	t.Helper()
	if len(wf.Hash) != 64 {
		t.Errorf("Hash = %q, want hex sha256", wf.Hash)
	}
	if len(wf.Blocks[""]) != len(wf.Steps) {
		t.Errorf("Blocks[\"\"] has %d steps, Steps %d", len(wf.Blocks[""]), len(wf.Steps))
	}
	seen := map[StepID]bool{}
	var walk func(block BlockID, steps []Step)
	walk = func(block BlockID, steps []Step) {
		got, ok := wf.Blocks[block]
		if !ok {
			t.Errorf("block %q missing from Blocks", block)
		}
		if len(got) != len(steps) {
			t.Errorf("block %q has %d steps in Blocks, %d in the tree", block, len(got), len(steps))
		}
		for _, s := range steps {
			b := s.Base()
			if seen[b.ID] {
				t.Errorf("step id %q used twice", b.ID)
			}
			seen[b.ID] = true
			if wf.ByID[b.ID] != s {
				t.Errorf("ByID[%q] is not the step", b.ID)
			}
			if b.Pos.Line < 1 {
				t.Errorf("step %q has no position", b.ID)
			}
			sub := func(block BlockID, steps []Step) {
				if wf.Owner[block] != s {
					t.Errorf("Owner[%q] is not step %q", block, b.ID)
				}
				walk(block, steps)
			}
			if b.OnError != nil {
				if want := BlockID(string(b.ID) + "#onError"); b.OnErrorBlock != want {
					t.Errorf("onError block %q, want %q", b.OnErrorBlock, want)
				}
				sub(b.OnErrorBlock, b.OnError)
			}
			switch s := s.(type) {
			case *SwitchStep:
				for i, c := range s.Cases {
					if want := BlockID(string(b.ID) + "#case" + strconv.Itoa(i)); c.Block != want {
						t.Errorf("case block %q, want %q", c.Block, want)
					}
					sub(c.Block, c.Steps)
				}
				if s.HasDefault {
					sub(s.DefaultBlock, s.Default)
				}
			case *WaitStep:
				if s.HasOnTimeout {
					sub(s.OnTimeoutBlock, s.OnTimeout)
				}
			case *WhileStep:
				sub(s.Block, s.Steps)
			case *TryStep:
				sub(s.Block, s.Steps)
				sub(s.Catch.Block, s.Catch.Steps)
			case *ForEachStep:
				sub(s.Block, s.Steps)
				if s.OnItem != nil {
					if want := BlockID(string(b.ID) + "#onItem"); s.OnItemBlock != want {
						t.Errorf("onItem block %q, want %q", s.OnItemBlock, want)
					}
					sub(s.OnItemBlock, s.OnItem)
				}
			case *ParallelStep:
				if s.OnBranch != nil {
					if want := BlockID(string(b.ID) + "#onBranch"); s.OnBranchBlock != want {
						t.Errorf("onBranch block %q, want %q", s.OnBranchBlock, want)
					}
					sub(s.OnBranchBlock, s.OnBranch)
				}
				for i, br := range s.Branches {
					if want := BlockID(string(b.ID) + "#branch" + strconv.Itoa(i)); br.Block != want {
						t.Errorf("branch block %q, want %q", br.Block, want)
					}
					sub(br.Block, br.Steps)
				}
			}
		}
	}
	walk("", wf.Steps)
	if len(wf.Owner) != len(wf.Blocks)-1 {
		t.Errorf("Owner has %d blocks, Blocks %d besides the top level", len(wf.Owner), len(wf.Blocks)-1)
	}
	if len(seen) != len(wf.ByID) {
		t.Errorf("ByID has %d steps, the tree %d", len(wf.ByID), len(seen))
	}
}
