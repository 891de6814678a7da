package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// cairnBin is the cairn binary, built once for the whole test run.
var cairnBin string

// soak is set by CAIRN_SOAK=1: the full-size runs of make soak.
var soak = os.Getenv("CAIRN_SOAK") == "1"

// size picks the quick figure for go test or the soak figure.
func size(quick, full int) int {
	if soak {
		return full
	}
	return quick
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cairnBin = filepath.Join(dir, "cairn")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", cairnBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goBin, append(args, "github.com/cairnhq/cairn")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cairn:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
