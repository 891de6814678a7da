package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"
)

// The machine may be shared (other builds and tests): the bench waits for
// it to be quiet before each repetition and records how much CPU other
// processes took while it measured.

// machineBusy returns the CPU seconds all processes have used so far
// (user, nice, system, irq, softirq, steal from /proc/stat).
func machineBusy() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var busy float64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100, true // USER_HZ is 100 on Linux
}

// waitQuiet waits until the whole machine uses less than maxCores for 0.3
// s (the system under test is idle then), at most limit. It returns
// the last load seen, in cores.
func waitQuiet(ctx context.Context, maxCores float64, limit time.Duration) float64 {
	deadline := time.Now().Add(limit)
	for {
		b0, ok := machineBusy()
		if !ok {
			return 0
		}
		t0 := time.Now()
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(300 * time.Millisecond):
		}
		b1, _ := machineBusy()
		load := (b1 - b0) / time.Since(t0).Seconds()
		if load <= maxCores || time.Now().After(deadline) {
			return load
		}
	}
}

// quietWait is the longest the bench waits for a quiet machine before a
// repetition (-quiet-wait).
var quietWait = 20 * time.Second

// quietCores is the most the machine may use, in cores, before a
// repetition starts (the idle engines and Redis use a few percent).
const quietCores = 0.25
