package schema_test

// TestSchemaInAnEditor runs the real yaml-language-server (what VS Code's
// YAML extension, Neovim and Helix use) over stdio with the workflow
// schema and no network: a valid workflow has no diagnostics, a misspelt
// step key is flagged on its line, and completion in a step offers the
// step kinds. `make deps-test` installs the server into .cache/yls.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ylsBin finds yaml-language-server: $CAIRN_YLS, else the copy make
// deps-test installs.
func ylsBin(t *testing.T) string {
	if p := os.Getenv("CAIRN_YLS"); p != "" {
		return p
	}
	p, err := filepath.Abs("../.cache/yls/node_modules/.bin/yaml-language-server")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		msg := "yaml-language-server is not installed: run `make deps-test` (npm install --prefix .cache/yls yaml-language-server), or set CAIRN_YLS"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// lsp is a minimal Language Server Protocol client over a child's stdio.
type lsp struct {
	t       *testing.T
	in      io.Writer
	mu      sync.Mutex
	nextID  int
	diags   map[string]chan []diagnostic // by document URI
	replies map[int]chan json.RawMessage
	config  json.RawMessage // answered to workspace/configuration
}

type diagnostic struct {
	Range struct {
		Start struct{ Line, Character int }
	}
	Severity int
	Message  string
}

func startLSP(t *testing.T, bin string, config json.RawMessage) *lsp {
	cmd := exec.Command(bin, "--stdio")
	// No network: a schema the server would fetch fails instead.
	cmd.Env = append(os.Environ(), "HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := &lsp{t: t, in: in, diags: map[string]chan []diagnostic{}, replies: map[int]chan json.RawMessage{}, config: config}
	go c.read(bufio.NewReader(out))
	return c
}

func (c *lsp) send(msg map[string]any) {
	msg["jsonrpc"] = "2.0"
	b, _ := json.Marshal(msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.in, "Content-Length: %d\r\n\r\n%s", len(b), b)
}

// call sends a request and waits for its result.
func (c *lsp) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan json.RawMessage, 1)
	c.replies[id] = ch
	c.mu.Unlock()
	c.send(map[string]any{"id": id, "method": method, "params": params})
	select {
	case r := <-ch:
		return r
	case <-time.After(time.Minute):
		c.t.Fatalf("no answer to %s within a minute", method)
		return nil
	}
}

func (c *lsp) notify(method string, params any) {
	c.send(map[string]any{"method": method, "params": params})
}

// diagnostics waits for the next diagnostics the server publishes for uri.
func (c *lsp) diagnostics(uri string) []diagnostic {
	c.t.Helper()
	select {
	case d := <-c.diagsFor(uri):
		return d
	case <-time.After(time.Minute):
		c.t.Fatalf("no diagnostics for %s within a minute", uri)
		return nil
	}
}

func (c *lsp) diagsFor(uri string) chan []diagnostic {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.diags[uri] == nil {
		c.diags[uri] = make(chan []diagnostic, 16)
	}
	return c.diags[uri]
}

func (c *lsp) read(r *bufio.Reader) {
	for {
		n := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var m struct {
			ID     *int            `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal(body, &m) != nil {
			continue
		}
		switch {
		case m.Method == "textDocument/publishDiagnostics":
			var p struct {
				URI         string       `json:"uri"`
				Diagnostics []diagnostic `json:"diagnostics"`
			}
			_ = json.Unmarshal(m.Params, &p)
			c.diagsFor(p.URI) <- p.Diagnostics
		case m.Method == "workspace/configuration" && m.ID != nil:
			var p struct{ Items []any }
			_ = json.Unmarshal(m.Params, &p)
			res := make([]json.RawMessage, len(p.Items))
			for i := range res {
				res[i] = c.config
			}
			c.send(map[string]any{"id": *m.ID, "result": res})
		case m.Method != "" && m.ID != nil:
			// Other server requests (registerCapability, …): accept.
			c.send(map[string]any{"id": *m.ID, "result": nil})
		case m.ID != nil:
			c.mu.Lock()
			ch := c.replies[*m.ID]
			c.mu.Unlock()
			if ch != nil {
				ch <- m.Result
			}
		}
	}
}

func TestSchemaInAnEditor(t *testing.T) {
	bin := ylsBin(t)
	schemaPath, err := filepath.Abs("workflow.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := json.RawMessage(`{"validate":true,"completion":true,"hover":true,"schemaStore":{"enable":false}}`)
	c := startLSP(t, bin, config)
	c.call("initialize", map[string]any{
		"processId": os.Getpid(), "rootUri": "file://" + dir,
		"capabilities": map[string]any{
			"workspace":    map[string]any{"configuration": true},
			"textDocument": map[string]any{"completion": map[string]any{"completionItem": map[string]any{"snippetSupport": false}}},
		},
	})
	c.notify("initialized", map[string]any{})
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"yaml": json.RawMessage(config)}})

	modeline := "# yaml-language-server: $schema=file://" + schemaPath + "\n"
	open := func(name, text string) string {
		uri := "file://" + filepath.Join(dir, name)
		c.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
			"uri": uri, "languageId": "yaml", "version": 1, "text": text,
		}})
		return uri
	}
	errorsOf := func(ds []diagnostic) []diagnostic {
		var out []diagnostic
		for _, d := range ds {
			if d.Severity == 1 {
				out = append(out, d)
			}
		}
		return out
	}

	// A valid workflow: the example ReserveTicket, with its own schema
	// line pointing here.
	src, err := os.ReadFile("../workflows/reserve-ticket.yaml")
	if err != nil {
		t.Fatal(err)
	}
	valid := modeline + strings.SplitN(string(src), "\n", 2)[1]
	if ds := errorsOf(c.diagnostics(open("valid.yaml", valid))); len(ds) != 0 {
		t.Errorf("the valid workflow has errors: %+v", ds)
	}

	// A misspelt step key on line 4 (0-based 3).
	bad := modeline + "name: Typo\nsteps:\n  - activty: Charge\n"
	ds := errorsOf(c.diagnostics(open("bad.yaml", bad)))
	flagged := false
	for _, d := range ds {
		if d.Range.Start.Line == 3 {
			flagged = true
		}
	}
	if !flagged {
		t.Errorf("the misspelt step key on line 4 is not flagged: %+v", ds)
	}

	// Completion at the start of a new step offers the step kinds.
	comp := modeline + "name: Complete\nsteps:\n  - \n"
	uri := open("complete.yaml", comp)
	c.diagnostics(uri)
	res := c.call("textDocument/completion", map[string]any{
		"textDocument": map[string]any{"uri": uri},
		"position":     map[string]any{"line": 3, "character": 4},
	})
	var list struct {
		Items []struct{ Label string } `json:"items"`
	}
	if err := json.Unmarshal(res, &list); err != nil {
		t.Fatalf("completion answer %s: %v", res, err)
	}
	labels := map[string]bool{}
	for _, it := range list.Items {
		labels[it.Label] = true
	}
	for _, want := range []string{"activity", "wait", "set", "setStatus", "switch", "forEach", "parallel"} {
		if !labels[want] {
			t.Errorf("completion in a step does not offer %q (offered %v)", want, labels)
		}
	}
}
