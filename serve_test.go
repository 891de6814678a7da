package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
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
