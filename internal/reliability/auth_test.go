package reliability

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/redistest"
)

// Two keys, so that either works; long and distinctive, so that finding
// them in the output means they were printed.
const (
	keyA = "k-alpha-7c4b0e1f9a2d63850b1e"
	keyB = "k-beta-e58d2a9c0f4b71a63d2c"
)

// TestAuth runs cairn with API keys and calls every route of its OpenAPI
// document, plus unknown paths: without a key, or with a wrong one (in each
// of the three places a key may go), every call but /healthz answers 401
// JSON; with a right one, none does. Afterwards, and after requests that
// failed while Redis was away, neither key (nor a wrong key that was sent)
// appears anywhere in the process's output.
func TestAuth(t *testing.T) {
	rs := redistest.Start(t)
	book := &logBook{}
	wf := writeWorkflows(t, map[string]string{"Echo": hostileWorkflows["Echo"], "Keep": hostileWorkflows["Keep"]})
	p := startCairn(t, book, serveOpts{redis: rs.URL(), workflows: wf, keys: keyA + "," + keyB})
	anon := newClient(p.url, "")
	good := newClient(p.url, keyA)
	if r := good.must(t, "POST", df+"/orchestrators/Keep/auth-1", "application/json", nil); r.code != 202 {
		t.Fatalf("start with key: %v", r)
	}

	// Every documented route, with its parameters filled in.
	r := good.must(t, "GET", "/v1/openapi.json", "", nil)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if r.code != 200 || json.Unmarshal(r.body, &doc) != nil || len(doc.Paths) == 0 {
		t.Fatalf("openapi.json with a key: %v", r)
	}
	fill := strings.NewReplacer("{name}", "Echo", "{id}", "auth-1", "{event}", "E", "{task}", "dGFzaw")
	type route struct{ method, path string }
	var routes []route
	for path, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "post", "put", "delete", "patch":
				routes = append(routes, route{strings.ToUpper(m), fill.Replace(path)})
			}
		}
	}
	// Paths no route serves must not tell a stranger so.
	routes = append(routes, route{"GET", "/nowhere"}, route{"POST", df + "/nowhere"}, route{"GET", "/v1"},
		route{"GET", "/healthz/../readyz"}, route{"GET", "/HEALTHZ"}, route{"PATCH", df + "/instances/auth-1"},
		route{"GET", "/ui/api/instances"})
	sort.Slice(routes, func(i, j int) bool { return routes[i].path+routes[i].method < routes[j].path+routes[j].method })

	wrongs := []struct {
		name    string
		query   string
		headers []string
	}{
		{"no key", "", nil},
		{"wrong header key", "", []string{"x-functions-key", "nope-" + keyA}},
		{"key prefix", "", []string{"x-functions-key", keyA[:len(keyA)-1]}},
		{"key plus one", "", []string{"x-functions-key", keyA + "x"}},
		{"key in other case", "", []string{"x-functions-key", strings.ToUpper(keyA)}},
		{"both keys", "", []string{"x-functions-key", keyA + "," + keyB}},
		{"wrong bearer", "", []string{"Authorization", "Bearer wrong-key-0123456789"}},
		{"bearer without key", "", []string{"Authorization", "Bearer "}},
		{"basic auth", "", []string{"Authorization", "Basic " + keyA}},
		{"wrong code", "code=wrong-code-0123456789", nil},
		{"empty code", "code=", nil},
	}
	checked := 0
	for _, rt := range routes {
		open := rt.method == "GET" && rt.path == "/healthz"
		for _, w := range wrongs {
			path := rt.path
			if w.query != "" {
				path += sep(path) + w.query
			}
			r, err := anon.do(rt.method, path, "application/json", nil, w.headers...)
			checked++
			switch {
			case err != nil:
				t.Errorf("%s %s, %s: %v", rt.method, rt.path, w.name, err)
			case open && r.code != 200:
				t.Errorf("%s %s, %s: %v, want 200 (open)", rt.method, rt.path, w.name, r)
			case !open && (r.code != 401 || r.errorCode() != "unauthorized"):
				t.Errorf("%s %s, %s: %v, want 401 unauthorized", rt.method, rt.path, w.name, r)
			}
		}
		for _, right := range []struct {
			name    string
			query   string
			headers []string
		}{
			{"header", "", []string{"x-functions-key", keyB}},
			{"bearer", "", []string{"Authorization", "Bearer " + keyA}},
			{"code", "code=" + url.QueryEscape(keyB), nil},
		} {
			if strings.HasSuffix(rt.path, "/events") {
				continue // a stream of a live instance does not end by itself
			}
			path := rt.path
			if right.query != "" {
				path += sep(path) + right.query
			}
			r, err := anon.do(rt.method, path, "application/json", nil, right.headers...)
			checked++
			if err != nil || r.code == 401 {
				t.Errorf("%s %s with the key in the %s: %v %v", rt.method, rt.path, right.name, r, err)
			}
		}
	}

	// Management URLs carry a key only when it came as ?code=.
	r = good.must(t, "POST", df+"/orchestrators/Echo/auth-2", "application/json", nil)
	if r.code != 202 || strings.Contains(string(r.body)+strings.Join(r.header.Values("Location"), ""), keyA) {
		t.Errorf("start with a header key: %v %v", r, r.header)
	}
	r = anon.must(t, "POST", df+"/orchestrators/Echo/auth-3?code="+keyA, "application/json", nil)
	if r.code != 202 || !strings.Contains(string(r.body), "code="+keyA) {
		t.Errorf("start with ?code=: %v", r)
	}

	// Requests that fail on the server side are logged: with Redis away,
	// send keys every way and make sure the log does not keep them.
	rs.Stop()
	for _, h := range [][]string{{"x-functions-key", keyA}, {"Authorization", "Bearer " + keyB}, nil} {
		path := df + "/instances/auth-1"
		if h == nil {
			path += "?code=" + keyA
		}
		if r, err := anon.do("GET", path, "", nil, h...); err != nil || r.code != http.StatusServiceUnavailable {
			t.Errorf("with Redis away: %v %v", r, err)
		}
	}
	p.stop(t)
	book.check(t, keyA, keyB, "wrong-key-0123456789", "wrong-code-0123456789", strings.ToUpper(keyA))
	t.Logf("auth: %d routes (%d from the OpenAPI document), %d calls checked; no key in the output", len(routes), len(routes)-7, checked)
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
