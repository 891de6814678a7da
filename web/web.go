// Package web is cairn's progress page: HTML, CSS and JavaScript embedded in
// the binary and served under /ui. The pages read everything through the
// JSON API (the Durable Functions endpoints and /v1) from the browser; the
// handler adds only the step tree of a workflow definition, which the API
// does not have.
//
//	/ui                         instances, with filters and paging
//	/ui/instances/{id}          one instance: diagram, status, countdown, history, actions; live
//	/ui/workflows               definitions, versions, diagrams, lint problems
//	/ui/schedules               schedules: next and last run; pause, resume, run now
//	/ui/static/...              the assets
//	/ui/api/workflows/{name}/{hash}/graph   the step tree (hash "latest" = the newest version)
//
// The pages themselves hold no data and need no API key; /ui/api/ does, and
// the host that mounts the handler checks it there like on every API call.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/schema"
)

// Prefix is where the handler serves; the pages link to absolute paths
// under it.
const Prefix = "/ui"

// Definitions reads stored workflow definitions; *redisstore.Store
// satisfies it. Both return an error wrapping interpreter.ErrNotFound when
// there is no such workflow or version.
type Definitions interface {
	LoadDefinition(ctx context.Context, name, hash string) ([]byte, error)
	// LatestDefinition returns the hash of the newest version of name.
	LatestDefinition(ctx context.Context, name string) (string, error)
}

// Config configures the handler. Definitions is required.
type Config struct {
	Definitions Definitions
	// Logger receives store failures; nil = slog.Default().
	Logger *slog.Logger
}

//go:embed static page.html
var files embed.FS

// graphCacheSize bounds the graphs kept in memory; a definition version
// never changes, so a kept graph is never stale.
const graphCacheSize = 256

type handler struct {
	defs   Definitions
	log    *slog.Logger
	mux    *http.ServeMux
	assets map[string]asset // by path under static/
	pages  map[string]asset // by page name

	mu     sync.Mutex
	graphs map[string][]byte // name@hash → JSON
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// New returns the handler for everything under /ui.
func New(cfg Config) http.Handler {
	h := &handler{
		defs:   cfg.Definitions,
		log:    cfg.Logger,
		mux:    http.NewServeMux(),
		assets: map[string]asset{},
		pages:  map[string]asset{},
		graphs: map[string][]byte{},
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.loadAssets()

	h.mux.HandleFunc("GET "+Prefix, h.page("instances"))
	h.mux.HandleFunc("GET "+Prefix+"/{$}", h.page("instances"))
	h.mux.HandleFunc("GET "+Prefix+"/instances/{id}", h.page("instance"))
	h.mux.HandleFunc("GET "+Prefix+"/workflows", h.page("workflows"))
	h.mux.HandleFunc("GET "+Prefix+"/schedules", h.page("schedules"))
	h.mux.HandleFunc("GET "+Prefix+"/static/{file...}", h.static)
	h.mux.HandleFunc("GET "+Prefix+"/api/workflows/{name}/{hash}/graph", h.graph)
	h.mux.HandleFunc(Prefix+"/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not-found", "no route for "+r.Method+" "+r.URL.Path)
	})
	h.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("404: no page at " + r.URL.Path + " (try " + Prefix + ")\n"))
	})
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// The pages load only their own scripts and styles and talk only to
	// this origin; everything they show is written as text, never as HTML.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

var pageTemplate = template.Must(template.ParseFS(files, "page.html"))

func (h *handler) loadAssets() {
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not every system's mime table has these
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		h.assets[strings.TrimPrefix(p, "static/")] = newAsset(b, ctype)
		return nil
	})
	if err != nil {
		panic("web: embedded assets: " + err.Error())
	}
	for _, p := range []struct{ name, title string }{{"instances", "Instances"}, {"instance", "Instance"}, {"workflows", "Workflows"}, {"schedules", "Schedules"}} {
		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, map[string]string{"Page": p.name, "Title": p.title, "Prefix": Prefix}); err != nil {
			panic("web: page template: " + err.Error())
		}
		h.pages[p.name] = newAsset(buf.Bytes(), "text/html; charset=utf-8")
	}
}

func newAsset(b []byte, ctype string) asset {
	sum := sha256.Sum256(b)
	return asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// serve writes an asset; the browser revalidates it on every load (cheap
// with the ETag), so a new binary's pages are picked up at once.
func serve(w http.ResponseWriter, r *http.Request, a asset) {
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func (h *handler) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, h.pages[name])
	}
}

func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	serve(w, r, a)
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`)
	hashRE = regexp.MustCompile(`^[0-9a-f]{8,128}$`)
)

// GET /ui/api/workflows/{name}/{hash}/graph
func (h *handler) graph(w http.ResponseWriter, r *http.Request) {
	name, hash := r.PathValue("name"), r.PathValue("hash")
	if !nameRE.MatchString(name) {
		writeError(w, http.StatusBadRequest, "bad-parameter", "workflow name "+quote(name)+" is not valid")
		return
	}
	if hash != "latest" && !hashRE.MatchString(hash) {
		writeError(w, http.StatusBadRequest, "bad-parameter", "version "+quote(hash)+" is not a content hash (hex) or latest")
		return
	}
	ctx := r.Context()
	if hash == "latest" {
		latest, err := h.defs.LatestDefinition(ctx, name)
		if err != nil {
			h.fail(w, err, "workflow "+quote(name)+" is not deployed")
			return
		}
		hash = latest
	}
	key := name + "@" + hash
	h.mu.Lock()
	body, ok := h.graphs[key]
	h.mu.Unlock()
	if !ok {
		src, err := h.defs.LoadDefinition(ctx, name, hash)
		if err != nil {
			h.fail(w, err, "workflow "+quote(name)+" has no version "+quote(hash))
			return
		}
		body, err = json.Marshal(graphOf(name, hash, src))
		if err != nil {
			h.fail(w, err, "")
			return
		}
		h.mu.Lock()
		if len(h.graphs) >= graphCacheSize {
			clear(h.graphs)
		}
		h.graphs[key] = body
		h.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// graphOf parses and lints one stored version. A version that no longer
// parses (the language changed since it was deployed) still answers, with
// its problems and no steps.
func graphOf(name, hash string, src []byte) *Graph {
	file := name + ".yaml"
	issues := schema.Lint(file, src)
	if issues == nil {
		issues = dsl.Issues{}
	}
	wf, err := dsl.Parse(file, src)
	if err != nil {
		g := &Graph{Name: name, Hash: hash, Steps: []*Node{}, Issues: issues, Error: err.Error()}
		if len(issues) == 0 {
			var iss dsl.Issues
			if errors.As(err, &iss) {
				g.Issues = iss
			}
		}
		return g
	}
	g := BuildGraph(wf)
	g.Hash = hash
	g.Issues = issues
	return g
}

func (h *handler) fail(w http.ResponseWriter, err error, notFound string) {
	if errors.Is(err, interpreter.ErrNotFound) && notFound != "" {
		writeError(w, http.StatusNotFound, "not-found", notFound)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	h.log.Error("web: reading a definition", "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "the definition could not be read")
}

// writeError writes the API's error shape, {error, message}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": code, "message": msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func quote(s string) string {
	b, _ := json.Marshal(clip(s, 120))
	return string(b)
}
