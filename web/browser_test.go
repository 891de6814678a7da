package web_test

// The browser test: a real redis-server, the store, the engine and the
// activity runtime in process, the API with the pages on an httptest server,
// and headless Chromium driving the pages through chromedp.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
	"github.com/cairnhq/cairn/web"
)

var _ web.Definitions = (*redisstore.Store)(nil)

// screenshots is where the test saves what the pages look like (ignored by
// git). With CAIRN_UI_DOCS=1 it also refreshes the images in docs/.
const screenshots = "testdata/screenshots"

const apiKey = "browser-test-key"

// chromium finds the browser: $CAIRN_CHROMIUM, else chromium on PATH. Under
// CI=true a missing browser fails the test; elsewhere it skips it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CAIRN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "chromium not found: install it with 'apt-get install -y chromium' (make test does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// stack is cairn in process: Redis, store, engine, activities, API + pages.
type stack struct {
	t     *testing.T
	store *redisstore.Store
	cat   *interpreter.Catalog
	srv   *httptest.Server
}

func newStack(t *testing.T) *stack {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.Options{Partitions: 4})
	if err := store.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, store: store, cat: interpreter.NewCatalog(store)}

	files, err := filepath.Glob("../workflows/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example workflows: %v", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		def, err := dsl.Parse(filepath.Base(f), src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := store.PutDefinition(context.Background(), def.Name, def.Hash, def.Source, time.Now()); err != nil {
			t.Fatal(err)
		}
		s.cat.Add(def)
	}

	// The engine and the activity runtime, wired as cairn serve does.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	reg := activity.NewRegistry()
	eng := interpreter.NewEngine(store, s.cat, interpreter.EngineOptions{
		Interpreter: interpreter.New(interpreter.Options{LocalActivity: reg.Has}),
	})
	rt := activity.NewRuntime(store, s.cat, reg, activity.Options{Consumer: eng.Consumer(), Block: 200 * time.Millisecond, ShutdownGrace: time.Second})
	wg.Add(2)
	go func() { defer wg.Done(); _ = eng.Run(ctx) }()
	go func() { defer wg.Done(); _ = rt.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	s.srv = httptest.NewServer(httpapi.New(httpapi.Config{
		Backend: store,
		Catalog: s.cat,
		APIKeys: []string{apiKey},
		UI:      web.New(web.Config{Definitions: store}),
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// call makes an API request with the key and returns the status and body.
func (s *stack) call(method, path, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("x-functions-key", apiKey)
	switch {
	case method == "PUT":
		req.Header.Set("Content-Type", "application/yaml")
	case body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (s *stack) start(workflow, id, input string) {
	s.t.Helper()
	if code, body := s.call("POST", "/runtime/webhooks/durabletask/orchestrators/"+workflow+"/"+id, input); code != http.StatusAccepted {
		s.t.Fatalf("start %s: %d %s", id, code, body)
	}
}

// waitStatus polls the API until the instance's status satisfies ok.
func (s *stack) waitStatus(id string, ok func(st map[string]any) bool) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := s.call("GET", "/runtime/webhooks/durabletask/instances/"+id, "")
		var st map[string]any
		_ = json.Unmarshal([]byte(body), &st)
		if st != nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("instance %s: never reached the expected state; last %s", id, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitingFor(event string) func(map[string]any) bool {
	return func(st map[string]any) bool {
		w, _ := st["waitingFor"].(map[string]any)
		return w != nil && w["event"] == event
	}
}

// Mounted in the API with keys: the pages and assets open without a key
// (a browser cannot send one when it opens a page), their data only with
// one, however the path is spelled.
func TestMountedKeys(t *testing.T) {
	s := newStack(t)
	get := func(path, key string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
		if key != "" {
			req.Header.Set("x-functions-key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, p := range []string{"/ui", "/ui/", "/ui/workflows", "/ui/instances/x", "/ui/static/app.css", "/ui/static/instance.js"} {
		if code := get(p, ""); code != http.StatusOK {
			t.Errorf("%s without a key: %d, want 200", p, code)
		}
	}
	graph := "/ui/api/workflows/ReserveTicket/latest/graph"
	for _, p := range []string{graph, "/ui/api/", "/ui/api", "/ui/static/../api/workflows/ReserveTicket/latest/graph", "/ui/%61pi/workflows/ReserveTicket/latest/graph", "/ui//api/workflows/ReserveTicket/latest/graph"} {
		if code := get(p, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", p, code)
		}
		if code := get(p, "wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong key: %d, want 401", p, code)
		}
	}
	if code := get(graph, apiKey); code != http.StatusOK {
		t.Errorf("%s with the key: %d, want 200", graph, code)
	}
	if code := get("/runtime/webhooks/durabletask/instances", ""); code != http.StatusUnauthorized {
		t.Errorf("the API without a key: %d, want 401", code)
	}
}

func TestBrowserReserveTicket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and chromium")
	}
	exe := chromium(t)
	s := newStack(t)

	// Some neighbours, so the list has more than one row and state.
	s.start("ReserveTicket", "booking-1", `"user1"`)
	s.start("CityRecommender", "trip-7", `1`)
	s.start("ReserveTicket", "booking-2", `"erin"`)
	s.start("OrderPipeline", "order-1001", `{"orderId":"1001","items":[{"sku":"tea","quantity":2,"price":4.5}]}`)
	s.start("ReserveTicket", "booking-3", `"dave"`)
	s.waitStatus("booking-1", waitingFor("BookingConfirmed"))
	s.waitStatus("trip-7", waitingFor("CitySelected"))
	s.waitStatus("booking-3", waitingFor("BookingConfirmed"))
	if code, body := s.call("POST", "/runtime/webhooks/durabletask/instances/booking-3/terminate?reason=changed+plans", ""); code != http.StatusAccepted {
		t.Fatalf("terminate: %d %s", code, body)
	}
	s.waitStatus("order-1001", func(st map[string]any) bool { return st["runtimeStatus"] == "Completed" })
	s.waitStatus("booking-2", waitingFor("BookingConfirmed"))

	ctx := browser(t, exe)
	if err := os.MkdirAll(screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(screenshots, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}

	// The instance page, first without a key: the API refuses the data and
	// the page asks for the key; with it entered, the status appears.
	do("open the instance page",
		chromedp.Navigate(s.srv.URL+"/ui/instances/booking-1"),
		chromedp.WaitVisible(chromedp.CSS("#banner")))
	if b := text("#banner"); !strings.Contains(b, "API key") {
		t.Fatalf("banner without a key = %q, want a request for the API key", b)
	}
	do("enter the API key",
		chromedp.SetValue(chromedp.CSS("#api-key"), apiKey),
		chromedp.Click(chromedp.CSS("#key-form button[type=submit]")))
	poll("the discount in the custom status", `document.querySelector('#custom-status')?.textContent.includes('"discount": 20')`)
	poll("the diagram with the current step", `document.querySelector('.step.current[data-step="confirmation"]') !== null`)
	poll("the live stream", `document.querySelector('#live.on') !== null`)
	if got := text("#runtime-status"); got != "Running" {
		t.Fatalf("runtime status = %q, want Running", got)
	}
	for _, done := range []string{"discount", "offer"} {
		poll("step "+done+" done", `document.querySelector('.step.done[data-step="`+done+`"]') !== null`)
	}
	if got := text("#waiting-for"); got != "BookingConfirmed" {
		t.Fatalf("waiting for = %q, want BookingConfirmed", got)
	}
	poll("the countdown", `/^00:[0-5]\d$/.test(document.querySelector('#countdown')?.textContent)`)
	poll("the history", `document.querySelectorAll('#history li').length >= 5`)
	// Let the countdown move off the full minute, then take the picture.
	time.Sleep(1200 * time.Millisecond)
	shot("instance.png")

	// Raise BookingConfirmed from the page; the page must turn Completed
	// with the thank-you message by itself: no reload (the marker set on
	// the window survives only if the document stays the same).
	do("mark the document", chromedp.Evaluate[chromedp.Void](`window.__noReload = true`))
	do("raise BookingConfirmed",
		chromedp.SetValue(chromedp.CSS("#event-name"), "BookingConfirmed"),
		chromedp.SetValue(chromedp.CSS("#event-payload"), "true"),
		chromedp.Click(chromedp.CSS("#raise-event")))
	poll("Completed", `document.querySelector('#runtime-status')?.dataset.status === 'Completed'`)
	poll("the thank-you message", `document.querySelector('#custom-status')?.textContent.includes('Thank you for confirming your booking.')`)
	poll("the output", `document.querySelector('#output')?.textContent.trim() === 'true'`)
	poll("the end reached", `document.querySelector('.pill.end.done') !== null && document.querySelector('.step.current') === null`)
	poll("the confirmed branch taken", `document.querySelector('.branch.taken .step.done') !== null && document.querySelector('.branch.untaken') !== null`)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload === true`))
	if err != nil || !ok {
		t.Fatalf("the page reloaded (marker gone: %v, %v)", ok, err)
	}
	if st := s.waitStatus("booking-1", func(st map[string]any) bool { return st["runtimeStatus"] == "Completed" }); st["output"] != true {
		t.Fatalf("output = %v, want true", st["output"])
	}
	shot("instance-completed.png")

	// The list: the key is still in the session; every instance shows.
	do("open the list",
		chromedp.Navigate(s.srv.URL+"/ui"),
		chromedp.WaitVisible(chromedp.CSS(`#rows tr[data-id="booking-1"]`)))
	poll("five rows", `document.querySelectorAll('#rows tr[data-id]').length === 5`)
	if got := text(`#rows tr[data-id="booking-1"] .badge`); got != "Completed" {
		t.Fatalf("booking-1 in the list: %q, want Completed", got)
	}
	if got := text(`#rows tr[data-id="booking-2"]`); !strings.Contains(got, "confirmation") || !strings.Contains(got, "discount: 15") {
		t.Fatalf("booking-2 row = %q, want its current step and discount", got)
	}
	shot("list.png")
	// A status filter goes to the API and into the address.
	do("filter Running",
		chromedp.Click(chromedp.CSS(`.chips input[value="Running"]`)))
	poll("two running", `document.querySelectorAll('#rows tr[data-id]').length === 2 && location.search.includes('runtimeStatus=Running')`)
	// The status chips carry the counts of GET /v1/stats.
	poll("two running counted", `document.querySelector('[data-count="Running"]').textContent.trim() === '2'`)
	// The workflow filter goes to the API (?workflow=), and the counts
	// follow it.
	do("filter ReserveTicket", chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.querySelector('#f-workflow');
		s.value = 'ReserveTicket';
		s.dispatchEvent(new Event('change'));
	})()`))
	poll("one running ReserveTicket", `[...document.querySelectorAll('#rows tr[data-id]')].map((r) => r.dataset.id).join() === 'booking-2'`)
	poll("one running ReserveTicket counted", `document.querySelector('[data-count="Running"]').textContent.trim() === '1'`)

	// Paging with the continuation token: 5 instances, 2 a page, in the
	// API's order.
	_, body := s.call("GET", "/runtime/webhooks/durabletask/instances", "")
	var all []struct{ InstanceID string }
	if err := json.Unmarshal([]byte(body), &all); err != nil || len(all) != 5 {
		t.Fatalf("list: %v %s", err, body)
	}
	page := func(from, to int) string {
		var ids []string
		for _, it := range all[from:to] {
			ids = append(ids, it.InstanceID)
		}
		return "'" + strings.Join(ids, ",") + "'"
	}
	rowIDs := `[...document.querySelectorAll('#rows tr[data-id]')].map((r) => r.dataset.id).join() === `
	do("open the list, 2 a page", chromedp.Navigate(s.srv.URL+"/ui?top=2"))
	poll("page 1", rowIDs+page(0, 2)+` && !document.querySelector('#next').disabled && document.querySelector('#prev').disabled`)
	do("next page", chromedp.Click(chromedp.CSS("#next")))
	poll("page 2", rowIDs+page(2, 4))
	do("next page", chromedp.Click(chromedp.CSS("#next")))
	poll("page 3", rowIDs+page(4, 5)+` && document.querySelector('#next').disabled`)
	do("previous page", chromedp.Click(chromedp.CSS("#prev")))
	poll("page 2 again", rowIDs+page(2, 4)+` && document.querySelector('#page-info').textContent === 'page 2'`)

	// A bulk terminate of the running ReserveTicket instances: counted,
	// confirmed, done; the list and the counts follow.
	do("open the running ReserveTicket instances", chromedp.Navigate(s.srv.URL+"/ui?workflow=ReserveTicket&runtimeStatus=Running"))
	poll("booking-2 listed", rowIDs+`'booking-2'`)
	do("bulk terminate", chromedp.Evaluate[chromedp.Void](`(() => {
		window.confirm = (q) => { window.asked = q; return true; };
		document.querySelector('#bulk-op').value = 'terminate';
		document.querySelector('#bulk-go').click();
	})()`))
	poll("terminated", `document.querySelector('#bulk-info').textContent === 'terminate: done, 1 applied.' && window.asked === 'terminate 1 instance?'`)
	poll("none running", `document.querySelectorAll('#rows tr[data-id]').length === 0 && document.querySelector('[data-count="Running"]').textContent.trim() === '0'`)

	// The workflows page: versions, diagram, lint.
	do("open the workflows page",
		chromedp.Navigate(s.srv.URL+"/ui/workflows?name=ReserveTicket"),
		chromedp.WaitVisible(chromedp.CSS(`.diagram .step[data-step="confirmation"]`)))
	if got := text("#lint"); !strings.Contains(got, "No problems") {
		t.Fatalf("lint = %q", got)
	}
	poll("one version", `document.querySelectorAll('#versions tbody tr').length === 1`)
	shot("workflows.png")

	// The schedules page: a deployed schedule, paused and resumed here.
	if code, body := s.call("PUT", "/v1/workflows/Nightly", "name: Nightly\nschedules:\n  - {id: nightly-report, cron: \"0 2 * * *\", timezone: Europe/Stockholm}\nsteps:\n  - return: done\n"); code/100 != 2 {
		t.Fatalf("deploy Nightly: %d %s", code, body)
	}
	do("open the schedules page",
		chromedp.Navigate(s.srv.URL+"/ui/schedules"),
		chromedp.WaitVisible(chromedp.CSS(`#schedule-rows tr[data-id="nightly-report"]`)))
	if got := text(`#schedule-rows tr[data-id="nightly-report"]`); !strings.Contains(got, "cron 0 2 * * * (Europe/Stockholm)") || !strings.Contains(got, "Nightly") {
		t.Fatalf("schedule row = %q", got)
	}
	do("pause it", chromedp.Click(chromedp.CSS(`#schedule-rows tr[data-id="nightly-report"] button.pause`)))
	poll("paused", `document.querySelector('#schedule-rows tr[data-id="nightly-report"]').dataset.paused === 'true'`)
	do("resume it", chromedp.Click(chromedp.CSS(`#schedule-rows tr[data-id="nightly-report"] button.resume`)))
	poll("resumed", `document.querySelector('#schedule-rows tr[data-id="nightly-report"]').dataset.paused === 'false'`)
	shot("schedules.png")

	if os.Getenv("CAIRN_UI_DOCS") == "1" {
		for from, to := range map[string]string{"instance.png": "ui-instance.png", "list.png": "ui-list.png"} {
			b, err := os.ReadFile(filepath.Join(screenshots, from))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "docs", to), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// browser starts headless Chromium for the test and returns its context.
// Messages the pages write to the console are logged; an uncaught
// exception fails the test.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Start the browser on the un-timed context (a timeout on the first
	// Run would stop the whole browser), then bound the test.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting %s: %v", exe, err)
	}
	var (
		mu         sync.Mutex
		exceptions []string
		done       = make(chan struct{})
	)
	messages := chromedp.Console(ctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			if m.IsException() {
				exceptions = append(exceptions, m.String())
			}
			mu.Unlock()
			t.Logf("browser %s", m)
		}
	}()
	tctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(exceptions) > 0 {
			t.Errorf("the pages threw:\n%s", strings.Join(exceptions, "\n"))
		}
	})
	return tctx
}
