package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/web"
)

// defs is an in-memory web.Definitions that counts loads.
type defs struct {
	mu     sync.Mutex
	src    map[string]map[string][]byte // name → hash → source
	latest map[string]string
	loads  int
	err    error
}

func newDefs(t *testing.T, files ...string) *defs {
	d := &defs{src: map[string]map[string][]byte{}, latest: map[string]string{}}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		wf, err := dsl.Parse(f, src)
		if err != nil {
			t.Fatal(err)
		}
		d.add(wf.Name, wf.Hash, src)
	}
	return d
}

func (d *defs) add(name, hash string, src []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.src[name] == nil {
		d.src[name] = map[string][]byte{}
	}
	d.src[name][hash] = src
	d.latest[name] = hash
}

func (d *defs) LoadDefinition(ctx context.Context, name, hash string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loads++
	if d.err != nil {
		return nil, d.err
	}
	src, ok := d.src[name][hash]
	if !ok {
		return nil, fmt.Errorf("definition %s@%s: %w", name, hash, interpreter.ErrNotFound)
	}
	return src, nil
}

func (d *defs) LatestDefinition(ctx context.Context, name string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return "", d.err
	}
	h, ok := d.latest[name]
	if !ok {
		return "", interpreter.ErrNotFound
	}
	return h, nil
}

func get(t *testing.T, h http.Handler, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestPages(t *testing.T) {
	h := web.New(web.Config{Definitions: newDefs(t)})
	for path, script := range map[string]string{
		"/ui":                      "/ui/static/instances.js",
		"/ui/":                     "/ui/static/instances.js",
		"/ui/instances/booking-1":  "/ui/static/instance.js",
		"/ui/instances/a%20b%2Fc":  "/ui/static/instance.js",
		"/ui/workflows":            "/ui/static/workflows.js",
		"/ui/workflows?name=X&h=1": "/ui/static/workflows.js",
	} {
		res, body := get(t, h, path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
			continue
		}
		if !strings.Contains(body, `<script type="module" src="`+script+`">`) {
			t.Errorf("%s does not load %s", path, script)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
}

func TestStatic(t *testing.T) {
	h := web.New(web.Config{Definitions: newDefs(t)})
	for file, ctype := range map[string]string{
		"common.js": "text/javascript", "graph.js": "text/javascript", "instance.js": "text/javascript",
		"instances.js": "text/javascript", "workflows.js": "text/javascript", "app.css": "text/css",
		"favicon.svg": "image/svg+xml",
	} {
		res, body := get(t, h, "/ui/static/"+file)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), ctype) || body == "" {
			t.Errorf("%s: %d %q", file, res.StatusCode, res.Header.Get("Content-Type"))
			continue
		}
		etag := res.Header.Get("ETag")
		if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: ETag %q, Cache-Control %q", file, etag, res.Header.Get("Cache-Control"))
		}
		if res, _ := get(t, h, "/ui/static/"+file, "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", file, res.StatusCode)
		}
	}
	for _, p := range []string{"/ui/static/nope.js", "/ui/static/", "/ui/static/../page.html", "/ui/nope", "/ui/instances"} {
		if res, _ := get(t, h, p); res.StatusCode != http.StatusNotFound && res.StatusCode/100 != 3 {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
}

// The pages use only what they were given: every import in a script names
// a file that exists, and no page builds HTML from strings.
func TestScriptsSelfContained(t *testing.T) {
	h := web.New(web.Config{Definitions: newDefs(t)})
	for _, f := range []string{"common.js", "graph.js", "instance.js", "instances.js", "workflows.js"} {
		_, body := get(t, h, "/ui/static/"+f)
		for _, line := range strings.Split(body, "\n") {
			if i := strings.Index(line, "} from './"); i >= 0 {
				dep := strings.TrimSuffix(strings.TrimSpace(line[i+len("} from './"):]), "';")
				if res, _ := get(t, h, "/ui/static/"+dep); res.StatusCode != 200 {
					t.Errorf("%s imports %s: %d", f, dep, res.StatusCode)
				}
			}
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}

func TestGraphEndpoint(t *testing.T) {
	d := newDefs(t, "../workflows/reserve-ticket.yaml")
	h := web.New(web.Config{Definitions: d})
	hash := d.latest["ReserveTicket"]

	var g web.Graph
	res, body := get(t, h, "/ui/api/workflows/ReserveTicket/"+hash+"/graph")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("graph: %d %s", res.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), &g); err != nil {
		t.Fatal(err)
	}
	if g.Name != "ReserveTicket" || g.Hash != hash || len(g.Steps) != 5 || g.Issues == nil || len(g.Issues) != 0 {
		t.Fatalf("graph = %+v", g)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(body), &raw)
	step := raw["steps"].([]any)[2].(map[string]any)
	for _, k := range []string{"id", "kind", "label", "pos", "blocks", "source"} {
		if _, ok := step[k]; !ok {
			t.Errorf("a node has no %q: %v", k, step)
		}
	}

	// Cached by version: a second read does not load again.
	loads := d.loads
	get(t, h, "/ui/api/workflows/ReserveTicket/"+hash+"/graph")
	if d.loads != loads {
		t.Errorf("graph loaded again: %d loads, want %d", d.loads, loads)
	}

	// latest resolves to the newest version.
	res, body = get(t, h, "/ui/api/workflows/ReserveTicket/latest/graph")
	if res.StatusCode != 200 || !strings.Contains(body, `"hash":"`+hash+`"`) {
		t.Fatalf("latest: %d %s", res.StatusCode, body)
	}
}

func TestGraphEndpointErrors(t *testing.T) {
	d := newDefs(t, "../workflows/reserve-ticket.yaml")
	// A stored version that no longer parses still answers, with its
	// problems.
	d.add("Old", "00000000aaaa", []byte("name: Old\nsteps:\n  - swtich: []\n"))
	h := web.New(web.Config{Definitions: d, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	res, body := get(t, h, "/ui/api/workflows/Old/00000000aaaa/graph")
	var g web.Graph
	_ = json.Unmarshal([]byte(body), &g)
	if res.StatusCode != 200 || g.Error == "" || len(g.Issues) == 0 || len(g.Steps) != 0 || !strings.Contains(body, `"steps":[]`) {
		t.Fatalf("unparsable version: %d %s", res.StatusCode, body)
	}
	if g.Issues[0].Pos.Line != 3 {
		t.Errorf("issue at %v, want line 3", g.Issues[0].Pos)
	}

	for path, want := range map[string]int{
		"/ui/api/workflows/Nope/latest/graph":                  404,
		"/ui/api/workflows/ReserveTicket/0123456789abcd/graph": 404,
		"/ui/api/workflows/ReserveTicket/NOTAHASH/graph":       400,
		"/ui/api/workflows/1bad/latest/graph":                  400,
		"/ui/api/workflows/ReserveTicket/latest":               404,
		"/ui/api/nothing":                                      404,
	} {
		res, body := get(t, h, path)
		var e struct{ Error, Message string }
		if res.StatusCode != want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" || e.Message == "" {
			t.Errorf("%s: %d %s, want %d with {error, message}", path, res.StatusCode, body, want)
		}
	}

	d.err = errors.New("redis: connection refused")
	res, body = get(t, h, "/ui/api/workflows/Other/latest/graph")
	if res.StatusCode != 500 || strings.Contains(body, "redis") {
		t.Errorf("store failure: %d %s, want 500 without the cause", res.StatusCode, body)
	}
}
