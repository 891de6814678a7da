package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
)

func TestServeLogFlags(t *testing.T) {
	for _, args := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}} {
		r := cairn(t, nil, append([]string{"serve"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("serve %v: %s", args, r)
		}
	}
	r := cairn(t, nil, "serve", "--role", "engine", "--addr", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.stderr, "without an API key") || !strings.Contains(r.stderr, "metrics") {
		t.Errorf("serve --role engine on 0.0.0.0 without a key: %s", r)
	}
}

// metricsLine is where an engine-only process says it serves /metrics.
var metricsLine = regexp.MustCompile(`^  metrics:\s+(http://\S+)/metrics$`)

// TestEngineServesMetrics: --role engine with --addr serves /metrics and
// /healthz, nothing of the API, and logs JSON with --log-format json.
func TestEngineServesMetrics(t *testing.T) {
	rs := redistest.Start(t)
	cmd := exec.Command(cairnBin, "serve", "--role", "engine", "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), "CAIRN_REDIS="+rs.URL())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := metricsLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var base string
	select {
	case base = <-found:
	case <-exited:
		t.Fatalf("cairn serve exited:\n%s", stderr)
	case <-time.After(time.Minute):
		t.Fatalf("cairn serve never said where /metrics is:\n%s", stderr)
	}
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "cairn_work_backlog ") || !strings.Contains(body, "go_goroutines ") {
		t.Errorf("GET /metrics: %d\n%s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("GET /healthz: %d", code)
	}
	if code, _ := get("/v1/workflows"); code != 404 {
		t.Errorf("GET /v1/workflows of an engine: %d, want 404", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("a log line is not a JSON record with msg and level: %q", l)
		}
	}
}

// TestServePprof: --pprof serves net/http/pprof on a loopback address
// only, and the start-up log says the retention in force (30 days unless
// set).
func TestServePprof(t *testing.T) {
	r := cairn(t, nil, "serve", "--pprof", "0.0.0.0:6060")
	if r.code != 2 || !strings.Contains(r.stderr, "--pprof") || !strings.Contains(r.stderr, "loopback") {
		t.Errorf("serve --pprof 0.0.0.0:6060: %s", r)
	}
	rs := redistest.Start(t)
	srv := startServe(t, t.TempDir(), []string{"CAIRN_REDIS=" + rs.URL()}, "--role", "engine", "--pprof", "127.0.0.1:0", "--log-format", "json")
	stderr, exited := srv.stderr, srv.exited
	var base, retention string
	deadline := time.Now().Add(time.Minute)
	for base == "" || retention == "" {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, Addr, Retention string }
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "pprof serving":
				base = rec.Addr
			case "retention of finished instances":
				retention = rec.Retention
			}
		}
		select {
		case <-exited:
			t.Fatalf("cairn serve exited:\n%s", stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn serve never logged its pprof address and retention:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if retention != "30d" {
		t.Errorf("default retention %q, want 30d", retention)
	}
	res, err := http.Get(base + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "serve") {
		t.Errorf("GET %scmdline: %d %q", base, res.StatusCode, b)
	}
}

// TestServeDurability: --durability takes none, replica or fsync; fsync
// against a Redis that does not fsync every write is refused at start,
// naming its setting; a cluster defaults to replica, one Redis to none.
func TestServeDurability(t *testing.T) {
	r := cairn(t, nil, "serve", "--durability", "always")
	if r.code != 2 || !strings.Contains(r.stderr, "--durability must be none, replica or fsync") {
		t.Errorf("serve --durability always: %s", r)
	}
	srv := redistest.StartWith(t, redistest.StartOpts{Args: []string{"--appendonly", "yes", "--appendfsync", "everysec"}})
	r = cairn(t, nil, "serve", "--durability", "fsync", "--redis", srv.URL(), "--addr", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "appendfsync everysec") {
		t.Errorf("serve --durability fsync on an everysec Redis: %s", r)
	}
	for _, c := range []struct {
		setting string
		cluster bool
		want    string
	}{{"", true, "replica"}, {"", false, "none"}, {"none", true, "none"}, {"fsync", false, "fsync"}} {
		if d, err := durabilityFor(c.setting, c.cluster); err != nil || d.String() != c.want {
			t.Errorf("durabilityFor(%q, cluster %v) = %v, %v; want %s", c.setting, c.cluster, d, err, c.want)
		}
	}
}

// TestServeStartsAndRaisesThroughItsEngine: in a process that runs the API
// and an engine, a start runs its first step on the way in and a raise or
// terminate of the instance applies at once (Engine.CreateInstance,
// RaiseEvent, SendControl): the instances end without a single work item
// written (no XADD reaches Redis), and the history is the one a round
// would write.
func TestServeStartsAndRaisesThroughItsEngine(t *testing.T) {
	rs := redistest.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "wait.yaml"), []byte("name: WaitGo\nsteps:\n  - wait: {event: go, result: x}\n  - return: ${ x + 1 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, t.TempDir(), []string{"CAIRN_REDIS=" + rs.URL()}, "--workflows", dir)
	base, stderr := srv.url, srv.stderr
	redisDo(t, rs.Addr(), "CONFIG RESETSTAT")
	df := base + "/runtime/webhooks/durabletask"
	post := func(url, body string) {
		t.Helper()
		res, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", url, res.StatusCode, b)
		}
	}
	post(df+"/orchestrators/WaitGo/w1", `null`)
	post(df+"/instances/w1/raiseEvent/go", `41`)
	var st struct {
		RuntimeStatus string          `json:"runtimeStatus"`
		Output        json.RawMessage `json:"output"`
		History       []struct {
			EventType string `json:"EventType"`
		} `json:"historyEvents"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.RuntimeStatus != "Completed" {
		if time.Now().After(deadline) {
			t.Fatalf("w1 is %s after 30 s:\n%s", st.RuntimeStatus, stderr)
		}
		res, err := http.Get(df + "/instances/w1?showHistory=true")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if string(st.Output) != "42" {
		t.Errorf("output %s, want 42", st.Output)
	}
	var types []string
	for _, h := range st.History {
		types = append(types, h.EventType)
	}
	if got := strings.Join(types, " "); got != "ExecutionScheduled ExecutionStarted EventRaised ExecutionCompleted" {
		t.Errorf("history %s", got)
	}
	// A terminate goes the same way.
	post(df+"/orchestrators/WaitGo/w2", `null`)
	post(df+"/instances/w2/terminate?reason=enough", ``)
	res, err := http.Get(df + "/instances/w2")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil || st.RuntimeStatus != "Terminated" {
		t.Errorf("w2 right after its terminate's 202: %s, %v", st.RuntimeStatus, err)
	}
	if stats := redisDo(t, rs.Addr(), "INFO commandstats"); strings.Contains(stats, "cmdstat_xadd:") {
		t.Errorf("work items were written (the start or the raise went through the work stream):\n%s", stats)
	}
}

// redisDo sends one inline command to the Redis at addr and returns its
// reply's text (a status line or a bulk string).
func redisDo(t *testing.T, addr, command string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, command+"\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			t.Fatalf("%s: reply %q", command, line)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	case strings.HasPrefix(line, "-"):
		t.Fatalf("%s: %s", command, line)
	}
	return line
}
