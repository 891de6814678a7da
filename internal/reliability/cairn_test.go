package reliability

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests. It guards against a hung
// test and is never an assertion about speed.
const waitLimit = 3 * time.Minute

// serveOpts is how one cairn serve process is started.
type serveOpts struct {
	redis      string // redis:// URL
	addr       string // host:port; "" = 127.0.0.1:0
	workflows  string // folder, or ""
	keys       string // CAIRN_API_KEYS, comma list, or ""
	role       string // "" = all
	partitions int    // 0 = cairn's default
}

// logBook keeps the output of every cairn process a test started, across
// kills and restarts, so that races, panics and leaked keys are found in
// all of it.
type logBook struct {
	mu   sync.Mutex
	logs []*syncBuffer
}

func (b *logBook) add() *syncBuffer {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &syncBuffer{}
	b.logs = append(b.logs, s)
	return s
}

func (b *logBook) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for i, l := range b.logs {
		fmt.Fprintf(&sb, "--- process %d ---\n%s", i+1, l.String())
	}
	return sb.String()
}

// check fails the test if any process reported a data race or a panic, or
// printed one of the secrets.
func (b *logBook) check(t testing.TB, secrets ...string) {
	t.Helper()
	all := b.String()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if i := strings.Index(all, bad); i >= 0 {
			t.Errorf("a cairn process printed %q:\n%s", bad, excerpt(all, i))
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("a cairn process printed the secret %q", s)
		}
	}
}

func excerpt(s string, i int) string {
	from, to := max(0, i-2000), min(len(s), i+4000)
	return s[from:to]
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

// proc is one running cairn serve.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	url    string // http://host:port; "" for role engine
	exited chan struct{}
	err    error
}

// readyLine is what serve prints once it runs.
var readyLine = regexp.MustCompile(`^cairn: (?:serving (http://\S+)|engine running)`)

// startCairn runs cairn serve and waits until it says it runs; the process
// is killed when the test ends. Its output goes to book.
func startCairn(t testing.TB, book *logBook, o serveOpts) *proc {
	t.Helper()
	p, err := launch(t, book, o)
	if err != nil {
		t.Fatalf("cairn serve: %v", err)
	}
	return p
}

// launch is startCairn returning its error, for use off the test goroutine.
func launch(t testing.TB, book *logBook, o serveOpts) (*proc, error) {
	// A fixed address can still be held for a moment by a process just
	// killed: try again for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := tryStart(t, book, o)
		if err == nil {
			return p, nil
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tryStart(t testing.TB, book *logBook, o serveOpts) (*proc, error) {
	args := []string{"serve", "--redis", o.redis}
	if o.role != "engine" {
		addr := o.addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		args = append(args, "--addr", addr)
	}
	if o.workflows != "" {
		args = append(args, "--workflows", o.workflows)
	}

	if o.role != "" {
		args = append(args, "--role", o.role)
	}
	if o.partitions > 0 {
		args = append(args, "--partitions", strconv.Itoa(o.partitions))
	}
	cmd := exec.Command(cairnBin, args...)
	cmd.Env = cleanEnv()
	if o.keys != "" {
		// In the environment, not on the command line, where every
		// user of the machine could read them.
		cmd.Env = append(cmd.Env, "CAIRN_API_KEYS="+o.keys)
	}
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, out: book.add(), exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.out, line)
			if m := readyLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		<-scanned // Wait closes stdout: read it all first
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	select {
	case p.url = <-found:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("exited (%v): %s", p.err, p.out)
	case <-time.After(time.Minute):
		p.kill()
		return nil, fmt.Errorf("did not come up within a minute: %s", p.out)
	}
}

// cleanEnv is the test's environment without cairn settings, so that a
// developer's CAIRN_* variables do not change what the tests run.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop ends the process with SIGTERM and wants a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		p.kill()
		t.Fatalf("cairn serve did not stop within a minute of SIGTERM")
	}
	if p.err != nil {
		t.Errorf("cairn serve after SIGTERM: %v", p.err)
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeWorkflows writes YAML sources into a new folder for --workflows.
func writeWorkflows(t testing.TB, srcs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range srcs {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// client speaks HTTP to one cairn API.
type client struct {
	base string
	key  string
	hc   *http.Client
}

func newClient(base, key string) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	// The timeout only keeps a hung server from hanging the test.
	return &client{base: base, key: key, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// reply is one HTTP answer.
type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) String() string {
	b := r.body
	if len(b) > 600 {
		b = append(b[:600:600], "…"...)
	}
	return fmt.Sprintf("%d %s", r.code, b)
}

// errorCode is the "error" field of a JSON error body ("" when the body is
// not one).
func (r reply) errorCode() string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(r.body, &e) != nil || e.Message == "" {
		return ""
	}
	return e.Error
}

// do sends one request; headers alternate name and value. A transport
// failure (refused, reset) is an error.
func (c *client) do(method, path, ctype string, body []byte, headers ...string) (reply, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.key != "" {
		req.Header.Set("x-functions-key", c.key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{res.StatusCode, res.Header, b}, nil
}

// must is do that fails the test on a transport error.
func (c *client) must(t testing.TB, method, path, ctype string, body []byte, headers ...string) reply {
	t.Helper()
	r, err := c.do(method, path, ctype, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

const df = "/runtime/webhooks/durabletask"

// status is what these tests read from GET /instances/{id}.
type status struct {
	Name          string          `json:"name"`
	InstanceID    string          `json:"instanceId"`
	RuntimeStatus string          `json:"runtimeStatus"`
	Output        json.RawMessage `json:"output"`
	CustomStatus  json.RawMessage `json:"customStatus"`
	History       []historyLine   `json:"historyEvents"`
	Revision      int64           `json:"revision"`
}

type historyLine struct {
	EventType string          `json:"EventType"`
	Timestamp string          `json:"Timestamp"`
	StepID    string          `json:"StepId"`
	Name      string          `json:"Name"`
	Data      json.RawMessage `json:"Data"`
	Attempt   int             `json:"Attempt"`
	Reason    string          `json:"Reason"`
}

func (s *status) String() string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s %s revision %d (%d history lines)", s.RuntimeStatus, s.Output, s.Revision, len(s.History))
}

func terminal(s string) bool { return s == "Completed" || s == "Failed" || s == "Terminated" }

// retriable reports an answer that means "the server or its store is away
// for now": no connection, or 503.
func retriable(r reply, err error) bool {
	return err != nil || r.code == http.StatusServiceUnavailable
}

// statusOf reads an instance's status with history, riding out outages.
func (c *client) statusOf(id string) (*status, error) {
	deadline := time.Now().Add(waitLimit)
	for {
		r, err := c.do("GET", df+"/instances/"+id+"?showHistory=true&showHistoryOutput=true", "", nil)
		if retriable(r, err) {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("status of %s: server away for %s: %v %v", id, waitLimit, r, err)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if r.code != 200 && r.code != 202 {
			return nil, fmt.Errorf("status of %s: %v", id, r)
		}
		var s status
		if err := json.Unmarshal(r.body, &s); err != nil {
			return nil, fmt.Errorf("status of %s: %v: %s", id, err, r.body)
		}
		return &s, nil
	}
}

// waitDone polls an instance until it is finished.
func (c *client) waitDone(id string) (*status, error) {
	deadline := time.Now().Add(waitLimit)
	for {
		s, err := c.statusOf(id)
		if err != nil {
			return nil, err
		}
		if terminal(s.RuntimeStatus) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("instance %s still %s after %s", id, s.RuntimeStatus, waitLimit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitAll waits until every instance is finished, polling with a few
// goroutines, and returns their statuses.
func (c *client) waitAll(ids []string) (map[string]*status, error) {
	out := make(map[string]*status, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var first error
	work := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				s, err := c.waitDone(id)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				out[id] = s
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return out, first
}

// jsonEqual compares two JSON texts by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}
