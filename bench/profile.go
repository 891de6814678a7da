package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
)

// ProfileTop is the top of the CPU and allocation profiles of one cairn
// run (ReserveTicket, large burst, one engine), taken in a run of its own
// so profiling does not touch the other figures.
type ProfileTop struct {
	Run         string `json:"run"`
	Tags        string `json:"tags"`        // CPU samples by role label
	CPUAll      string `json:"cpuAll"`      // the whole process (engine, activity runners, load generator)
	CPUActivity string `json:"cpuActivity"` // activity runtime, cumulative
	CPUEngine   string `json:"cpuEngine"`   // samples labelled role=engine
	CPUCum      string `json:"cpuCum"`      // engine, by cumulative time
	Allocs      string `json:"allocs"`      // alloc_space of the run
	RedisByTime string `json:"redisByTime"` // Redis µs per instance by command
	HTTP        string `json:"http"`        // GET status server (cairn's httpapi), flat
	HTTPCum     string `json:"httpCum"`     // the same, cumulative
	Files       []string
}

func profileRun(ctx context.Context, o options, addr string, h *harness, defs cairnDefs, r runSpec, logf func(string, ...any)) (*ProfileTop, error) {
	s, err := startCairn(ctx, addr, h, defs, cairnConfig{Engines: 1})
	if err != nil {
		return nil, err
	}
	defer s.stop()
	cpuPath := filepath.Join(o.resultsDir, "cpu.pprof")
	allocBase := filepath.Join(o.resultsDir, "allocs-before.pprof")
	allocPath := filepath.Join(o.resultsDir, "allocs.pprof")
	if o.cpuprofile != "" {
		return nil, fmt.Errorf("skipped: -cpuprofile already profiles the whole process")
	}
	runtime.GC()
	if err := writeProfile("allocs", allocBase); err != nil {
		return nil, err
	}
	f, err := os.Create(cpuPath)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	smp, err := measure(ctx, s, h, r, o.timeout)
	pprof.StopCPUProfile()
	f.Close()
	if err != nil {
		return nil, err
	}
	if err := writeProfile("allocs", allocPath); err != nil {
		return nil, err
	}
	logf("profiled cairn %s %s: %.0f/s", r.Shape, r.mode(), smp.PerSec)
	p := &ProfileTop{Run: fmt.Sprintf("cairn, %s, %s, 1 engine, %.0f instances/s while profiled", r.Shape, r.mode(), smp.PerSec),
		Files: []string{cpuPath, allocPath}}
	p.RedisByTime = topKeys(smp.Usec, 12, "%.1f µs")
	pp := func(args ...string) string { return pprofTop(ctx, args...) }
	p.Tags = tagsOf(ctx, cpuPath)
	p.CPUAll = pp(cpuPath)
	p.CPUActivity = pp("-cum", "-tagfocus=role=activity", cpuPath)
	p.CPUEngine = pp("-tagfocus=role=engine", cpuPath)
	p.CPUCum = pp("-cum", "-tagfocus=role=engine", cpuPath)
	p.Allocs = pp("-sample_index=alloc_space", "-base="+allocBase, allocPath)
	return p, nil
}

// tagsOf is go tool pprof -tags: the CPU by role label.
func tagsOf(ctx context.Context, path string) string {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return ""
	}
	out, err := exec.CommandContext(ctx, gobin, "tool", "pprof", "-tags", path).CombinedOutput()
	if err != nil {
		return ""
	}
	return trimPprof(string(out))
}

// pprofTop runs go tool pprof -top on a profile.
func pprofTop(ctx context.Context, args ...string) string {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "go tool pprof unavailable: " + err.Error()
	}
	out, err := exec.CommandContext(ctx, gobin, append([]string{"tool", "pprof", "-top", "-nodecount=22"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("pprof failed: %v\n%s", err, out)
	}
	return trimPprof(string(out))
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup(name).WriteTo(f, 0)
}

// trimPprof drops pprof's header lines about files and build ids.
func trimPprof(s string) string {
	var keep []string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}
