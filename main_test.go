package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
)

// cairnBin is the cairn binary built once for the tests.
var cairnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cairnBin = filepath.Join(dir, "cairn")
	if runtime.GOOS == "windows" {
		cairnBin += ".exe"
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", cairnBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goBin, append(args, ".")...)
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

// result is one finished cairn run.
type result struct {
	code           int
	stdout, stderr string
}

// cairn runs the binary with args and extra environment (NAME=value) and
// waits up to a minute for it.
func cairn(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// cleanEnv is the test's environment without CAIRN_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			env = append(env, kv)
		}
	}
	return env
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// needRedisServer skips the test when redis-server is missing, or fails
// it under CI=true, where nothing may be skipped for that reason.
func needRedisServer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		const msg = "redis-server not found: install it with 'apt-get install -y redis-server' (make test does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func TestHelp(t *testing.T) {
	if r := cairn(t, nil, "help"); r.code != 0 || !strings.Contains(r.stdout, "serve") || !strings.Contains(r.stdout, "wait") {
		t.Fatalf("cairn help: %s", r)
	}
	if r := cairn(t, nil); r.code != 2 {
		t.Fatalf("cairn without a command: %s", r)
	}
	if r := cairn(t, nil, "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %s", r)
	}
	for _, c := range commands() {
		r := cairn(t, nil, c.name, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "usage: cairn "+c.name) || !strings.Contains(r.stdout, "examples:") {
			t.Errorf("cairn %s --help: %s", c.name, r)
		}
	}
}

func TestClientUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"start"},
		{"start", "A", "B"},
		{"status"},
		{"raise", "id"},
		{"terminate"},
		{"wait"},
		{"list", "extra"},
		{"start", "X", "--bogus"},
		{"start", "X", "--input", "user1"}, // not JSON: a string needs quotes
		{"raise", "id", "Ev", "{broken"},
	} {
		r := cairn(t, []string{"CAIRN_SERVER=http://127.0.0.1:1"}, args...)
		if r.code != 2 {
			t.Errorf("cairn %s: want exit 2, got %s", strings.Join(args, " "), r)
		}
	}
	// A well-formed call to a server that is not there says so.
	r := cairn(t, []string{"CAIRN_SERVER=http://127.0.0.1:1"}, "status", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach") || !strings.Contains(r.stderr, "cairn serve") {
		t.Fatalf("unreachable server: %s", r)
	}
}

func TestLintWorkflowsFolder(t *testing.T) {
	r := cairn(t, nil, "lint", "workflows/")
	if r.code != 0 {
		t.Fatalf("cairn lint workflows/: %s", r)
	}
	r = cairn(t, nil, "lint", "--format", "json", "workflows/")
	if r.code != 0 || !json.Valid([]byte(r.stdout)) {
		t.Fatalf("cairn lint --format json workflows/: %s", r)
	}
}

// broken has an unknown step kind on line 4.
const broken = `name: Broken
steps:
  - set: {a: 1}
  - swtich:
      - when: a == 1
        steps: []
`

var located = regexp.MustCompile(`broken\.yaml:\d+:\d+`)

func TestLintBrokenFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(f, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cairn(t, nil, "lint", f)
	if r.code != 1 || !located.MatchString(r.stdout) {
		t.Fatalf("cairn lint broken.yaml: want exit 1 and file:line:col, got %s", r)
	}
	// Flags may follow the paths; a folder finds the file.
	r = cairn(t, nil, "lint", dir, "--format", "json")
	if r.code != 1 || !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, "broken.yaml") {
		t.Fatalf("cairn lint DIR --format json: %s", r)
	}
}

func TestLintUsage(t *testing.T) {
	for _, args := range [][]string{
		{"lint"},
		{"lint", "--format", "xml", "workflows/"},
		{"lint", filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		if r := cairn(t, nil, args...); r.code != 2 {
			t.Errorf("cairn %s: want exit 2, got %s", strings.Join(args, " "), r)
		}
	}
}

func TestSchemaIsJSON(t *testing.T) {
	r := cairn(t, nil, "schema")
	var v map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
		t.Fatalf("cairn schema: %s", r)
	}
	if _, ok := v["$schema"]; !ok {
		t.Fatalf("cairn schema: no $schema keyword: %.200s", r.stdout)
	}
}

func TestServeRefusesPublicAddressWithoutKey(t *testing.T) {
	r := cairn(t, nil, "serve", "--addr", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.stderr, "without an API key") {
		t.Fatalf("serve on 0.0.0.0 without a key: %s", r)
	}
	r = cairn(t, nil, "serve", "--role", "sideways")
	if r.code != 2 || !strings.Contains(r.stderr, "--role") {
		t.Fatalf("serve --role sideways: %s", r)
	}
	r = cairn(t, nil, "serve", "--retention", "a week")
	if r.code != 2 || !strings.Contains(r.stderr, "--retention") || !strings.Contains(r.stderr, "7d") {
		t.Fatalf("serve --retention 'a week': %s", r)
	}
	r = cairn(t, []string{"CAIRN_HISTORY=-3"}, "serve")
	if r.code != 2 || !strings.Contains(r.stderr, "--history") {
		t.Fatalf("serve with CAIRN_HISTORY=-3: %s", r)
	}
}

func TestServeStopsOnLintErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cairn(t, []string{"CAIRN_WORKFLOWS=" + dir}, "serve", "--addr", "127.0.0.1:0")
	if r.code != 1 || !located.MatchString(r.stderr) {
		t.Fatalf("serve with a broken workflow: %s", r)
	}
}

func TestServeWithoutRedisServer(t *testing.T) {
	empty := t.TempDir() // a PATH without redis-server
	cmd := exec.Command(cairnBin, "serve", "--addr", "127.0.0.1:0")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), "PATH="+empty)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "apt-get install -y redis-server") || !strings.Contains(lines[0], "--redis") {
		t.Fatalf("want one line saying how to install redis-server or pass --redis, got:\n%s", out)
	}
}

func TestRedisOptions(t *testing.T) {
	o, err := redisOptions("rediss://u:pw@cache:6380/2")
	if err != nil || o.Addrs[0] != "cache:6380" || o.DB != 2 || o.Password != "pw" || o.TLSConfig == nil || o.IsClusterMode {
		t.Fatalf("single URL: %+v, %v", o, err)
	}
	o, err = redisOptions("redis://:pw@n1:7000, redis://n2:7001,n3:7002")
	if err != nil || !o.IsClusterMode || strings.Join(o.Addrs, " ") != "n1:7000 n2:7001 n3:7002" || o.Password != "pw" {
		t.Fatalf("cluster list: %+v, %v", o, err)
	}
	if _, err := redisOptions("http://x"); err == nil {
		t.Fatal("http:// accepted")
	}
	if got := redactURL("redis://u:secret@h:1/0,redis://h2:2"); strings.Contains(got, "secret") {
		t.Fatalf("redactURL kept the password: %s", got)
	}
}

func TestParseInterspersed(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	fs := a.flagSet("x", "", "", "")
	id := fs.String("id", "", "")
	pos, err := a.parse(fs, []string{"A", "--id", "7", "B", "--", "--id", "-C"})
	if err != nil || *id != "7" || strings.Join(pos, " ") != "A B --id -C" {
		t.Fatalf("pos=%q id=%q err=%v", pos, *id, err)
	}
}

// server is a running `cairn serve`.
type server struct {
	cmd     *exec.Cmd
	url     string // http://host:port
	redis   string // the Redis URL it reported
	stderr  *syncBuffer
	exited  chan struct{}
	waitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readyLine is what serve prints once it runs: the API's URL (none for
// role engine) and the Redis URL.
var readyLine = regexp.MustCompile(`^cairn: (?:serving (http://\S+)|engine running) \(.*redis ([^\s)]+)`)

// startServe runs `cairn serve` in dir with args and waits until it prints
// that it runs. It is killed when the test ends if still running.
func startServe(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(cairnBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
			}
		}
	}()
	select {
	case m := <-found:
		s.url, s.redis = m[1], m[2]
	case <-s.exited:
		t.Fatalf("cairn serve exited: %v\nstderr:\n%s", s.waitErr, s.stderr)
	case <-time.After(time.Minute):
		t.Fatalf("cairn serve did not come up within a minute\nstderr:\n%s", s.stderr)
	}
	return s
}

// stop sends SIGTERM and wants a clean exit within 30s.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("cairn serve did not stop within 30s of SIGTERM\nstderr:\n%s", s.stderr)
	}
	if s.waitErr != nil {
		t.Fatalf("cairn serve after SIGTERM: %v\nstderr:\n%s", s.waitErr, s.stderr)
	}
}

// childPIDs lists the processes whose parent is pid (Linux /proc).
func childPIDs(pid int) []int {
	var kids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parens.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		var state string
		var ppid, self int
		if _, err := fmt.Sscanf(s[i+2:], "%s %d", &state, &ppid); err != nil || ppid != pid {
			continue
		}
		fmt.Sscanf(s, "%d", &self)
		kids = append(kids, self)
	}
	return kids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func TestServeWithPrivateRedis(t *testing.T) {
	needRedisServer(t)
	wf, err := filepath.Abs("workflows")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := startServe(t, dir, nil, "--workflows", wf)
	if _, err := os.Stat(filepath.Join(dir, ".cairn", "redis")); err != nil {
		t.Fatalf("private redis data: %v", err)
	}
	var kids []int
	if runtime.GOOS == "linux" {
		kids = childPIDs(s.cmd.Process.Pid)
		if len(kids) != 1 {
			t.Fatalf("want one child (redis-server), got %v", kids)
		}
	}
	env := []string{"CAIRN_SERVER=" + s.url}

	r := cairn(t, env, "start", "ReserveTicket", "--input", `"user1"`)
	var started struct{ ID string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &started) != nil || started.ID == "" {
		t.Fatalf("cairn start: %s\nserver:\n%s", r, s.stderr)
	}
	r = cairn(t, env, "status", started.ID)
	var st struct {
		InstanceID    string `json:"instanceId"`
		RuntimeStatus string `json:"runtimeStatus"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.InstanceID != started.ID || st.RuntimeStatus == "" {
		t.Fatalf("cairn status: %s", r)
	}
	r = cairn(t, env, "list")
	if r.code != 0 || !strings.Contains(r.stdout, started.ID) {
		t.Fatalf("cairn list: %s", r)
	}

	// The walk-through: the status offers the discount, a confirmed
	// booking completes.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = cairn(t, env, "status", started.ID)
		if strings.Contains(r.stdout, `"discount": 20`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no discount in the custom status: %s\nserver:\n%s", r, s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r = cairn(t, env, "raise", started.ID, "BookingConfirmed", "true"); r.code != 0 {
		t.Fatalf("cairn raise: %s", r)
	}
	r = cairn(t, env, "wait", started.ID, "--timeout", "30s")
	if r.code != 0 || !strings.Contains(r.stdout, `"Completed"`) || !strings.Contains(r.stdout, `"output": true`) ||
		!strings.Contains(r.stdout, "Thank you for confirming your booking.") {
		t.Fatalf("cairn wait: %s\nserver:\n%s", r, s.stderr)
	}

	// A terminated instance makes wait exit 1.
	r = cairn(t, env, "start", "ReserveTicket", "--id", "to-terminate", "--input", `"user2"`)
	if r.code != 0 {
		t.Fatalf("cairn start --id: %s", r)
	}
	if r = cairn(t, env, "terminate", "to-terminate", "--reason", "test"); r.code != 0 {
		t.Fatalf("cairn terminate: %s", r)
	}
	if r = cairn(t, env, "wait", "to-terminate", "--timeout", "30s"); r.code != 1 || !strings.Contains(r.stdout, `"Terminated"`) {
		t.Fatalf("cairn wait on a terminated instance: %s", r)
	}

	redisAddr := strings.TrimSuffix(strings.TrimPrefix(s.redis, "redis://"), "/0")
	s.stop(t)
	if c, err := net.DialTimeout("tcp", redisAddr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("the private redis still listens on %s after cairn stopped", redisAddr)
	}
	for _, pid := range kids {
		if alive(pid) {
			t.Fatalf("redis-server child %d still runs after cairn stopped", pid)
		}
	}
	for _, want := range []string{"http stopped", "engine stopped", "private redis stopped"} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("shutdown log lacks %q:\n%s", want, s.stderr)
		}
	}

	// The data survives a restart (append-only file in .cairn/redis).
	s = startServe(t, dir, nil)
	for id, want := range map[string]string{started.ID: `"Completed"`, "to-terminate": `"Terminated"`} {
		r = cairn(t, []string{"CAIRN_SERVER=" + s.url}, "status", id)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("status of %s after restart: %s", id, r)
		}
	}
	s.stop(t)
}

// waitFor is a workflow with no activity: it publishes a status, waits for
// the event Go and returns its payload.
const waitFor = `name: WaitFor
steps:
  - setStatus: {waiting: Go}
  - wait: {event: Go, timeout: 60s, result: v}
  - setStatus:
      got: ${ v }
  - return: ${ v }
`

// workerFlow calls an activity that an external worker runs.
const workerFlow = `name: WorkerFlow
steps:
  - activity: Greet
    input: ${ input }
    result: greeting
  - return: ${ greeting }
`

// TestSeveralEnginesShareOneRedis runs an API-only process and two
// engine-only processes on one external Redis, and an external worker
// through the API's task protocol.
func TestSeveralEnginesShareOneRedis(t *testing.T) {
	rs := redistest.Start(t)
	wf := t.TempDir()
	for name, src := range map[string]string{"wait-for.yaml": waitFor, "worker-flow.yaml": workerFlow} {
		if err := os.WriteFile(filepath.Join(wf, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"CAIRN_REDIS=" + rs.URL(), "CAIRN_PARTITIONS=4"}
	api := startServe(t, t.TempDir(), env, "--role", "api", "--workflows", wf)
	e1 := startServe(t, t.TempDir(), env, "--role", "engine")
	e2 := startServe(t, t.TempDir(), env, "--role", "engine")
	if api.redis != rs.URL() || e1.url != "" {
		t.Fatalf("api on %s with redis %s; engine url %q", api.url, api.redis, e1.url)
	}
	cenv := []string{"CAIRN_SERVER=" + api.url}
	ids := []string{"a1", "b2", "c3", "d4", "e5", "f6"}
	for _, id := range ids {
		if r := cairn(t, cenv, "start", "WaitFor", "--id", id); r.code != 0 {
			t.Fatalf("cairn start: %s", r)
		}
	}
	for i, id := range ids {
		if r := cairn(t, cenv, "raise", id, "Go", fmt.Sprint(i)); r.code != 0 {
			t.Fatalf("cairn raise: %s", r)
		}
	}
	for i, id := range ids {
		r := cairn(t, cenv, "wait", id, "--timeout", "30s")
		want := fmt.Sprintf(`"output": %d`, i)
		if r.code != 0 || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, fmt.Sprintf(`"got": %d`, i)) {
			t.Fatalf("cairn wait %s: want %s\n%s\napi:\n%s\nengine 1:\n%s\nengine 2:\n%s", id, want, r, api.stderr, e1.stderr, e2.stderr)
		}
	}
	// An external worker polls the API process and completes the task.
	if r := cairn(t, cenv, "start", "WorkerFlow", "--id", "w1", "--input", `"ana"`); r.code != 0 {
		t.Fatalf("cairn start WorkerFlow: %s", r)
	}
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(api.url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	code, task := post("/v1/tasks/poll", `{"activities":["Greet"],"workerId":"test-worker","waitSeconds":10}`)
	if code != http.StatusOK || task["input"] != "ana" {
		t.Fatalf("poll: %d %v", code, task)
	}
	if code, v := post(fmt.Sprintf("/v1/tasks/%s/complete", task["taskId"]), `{"result":"hello ana"}`); code != http.StatusOK {
		t.Fatalf("complete: %d %v", code, v)
	}
	if r := cairn(t, cenv, "wait", "w1", "--timeout", "30s"); r.code != 0 || !strings.Contains(r.stdout, `"output": "hello ana"`) {
		t.Fatalf("cairn wait w1: %s", r)
	}

	r := cairn(t, cenv, "list", "--status", "Completed")
	var list []json.RawMessage
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != len(ids)+1 {
		t.Fatalf("cairn list --status Completed: %s", r)
	}
	for _, s := range []*server{api, e1, e2} {
		s.stop(t)
	}
}

func TestJSONArg(t *testing.T) {
	f := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(f, []byte(" {\"a\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &app{stdin: strings.NewReader(`[1,2]`), stdout: io.Discard, stderr: io.Discard}
	for arg, want := range map[string]string{`"user1"`: `"user1"`, "@" + f: `{"a": 1}`, "@-": `[1,2]`, "null": "null", "20": "20"} {
		got, err := a.jsonArg("x", arg)
		if err != nil || string(got) != want {
			t.Errorf("jsonArg(%q) = %s, %v; want %s", arg, got, err, want)
		}
	}
	for _, arg := range []string{"user1", "", "@" + f + ".missing", "{"} {
		if _, err := a.jsonArg("x", arg); err == nil {
			t.Errorf("jsonArg(%q) accepted", arg)
		}
	}
	if _, err := a.jsonArg("the input", "user1"); err == nil || !strings.Contains(err.Error(), `'"user1"'`) {
		t.Errorf("a bare word should suggest quoting it: %v", err)
	}
}
