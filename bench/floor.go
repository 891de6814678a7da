package main

// The HTTP floor: what a Go server with no engine and no store costs per
// call on this machine, driven by the same client the same way as cairn
// serve in ReserveTicket over HTTP. A child process of the bench answers
// the three calls of an instance (start 202 with Durable Functions'
// management URLs, raiseEvent 202, GET status 200 Completed) at once, as a
// plain net/http ServeMux or as gin, the router cairn's API is built on.
// Its CPU per call is the part of cairn serve's that the kernel's loopback
// TCP, net/http and the router take whatever the handlers do.
//
// floor-redis is gin plus the least a durable store must do per call: one
// Redis command each (start HSETs the instance's record, raiseEvent
// RPUSHes the event, GET status HMGETs the record), through go-redis's
// pool, no engine. Its CPU per call above floor-gin is what one Redis round
// trip costs the server; cairn serve makes at least one per call too.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

// floorEnv, in a child's environment, makes the bench binary the floor
// server of the variant it names; floorRedisEnv gives floor-redis its
// Redis address.
const (
	floorEnv      = "CAIRN_BENCH_FLOOR"
	floorRedisEnv = "CAIRN_BENCH_FLOOR_REDIS"
)

// Floor variants.
const (
	floorNetHTTP = "floor-nethttp" // net/http's ServeMux
	floorGin     = "floor-gin"
	floorRedis   = "floor-redis" // gin and one Redis command per call
)

var floorVariants = []string{floorNetHTTP, floorGin, floorRedis}

// floorPayload is the start answer's body, Durable Functions'
// check-status payload.
type floorPayload struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// floorStatus is the GET status answer, an instance that completed.
type floorStatus struct {
	Name            string          `json:"name"`
	InstanceID      string          `json:"instanceId"`
	RuntimeStatus   string          `json:"runtimeStatus"`
	Input           json.RawMessage `json:"input"`
	CustomStatus    json.RawMessage `json:"customStatus"`
	Output          json.RawMessage `json:"output"`
	CreatedTime     string          `json:"createdTime"`
	LastUpdatedTime string          `json:"lastUpdatedTime"`
}

func floorStart(host, id string) ([]byte, string) {
	base := "http://" + host + dfBase + "/instances/" + id
	b, _ := json.Marshal(floorPayload{ID: id, StatusQueryGetURI: base,
		SendEventPostURI: base + "/raiseEvent/{eventName}", TerminatePostURI: base + "/terminate?reason={text}",
		PurgeHistoryDeleteURI: base, RestartPostURI: base + "/restart",
		SuspendPostURI: base + "/suspend?reason={text}", ResumePostURI: base + "/resume?reason={text}"})
	return b, base
}

// floorCustom is the custom status the floor's instances show, ReserveTicket's.
const floorCustom = `{"discount":20,"discountTimeout":60,"bookingUrl":"https://example.com/book/user-1"}`

func floorGet(id string) []byte {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(floorStatus{Name: "ReserveTicket", InstanceID: id, RuntimeStatus: "Completed",
		Input: json.RawMessage(`"user-1"`), CustomStatus: json.RawMessage(floorCustom),
		Output: json.RawMessage(`true`), CreatedTime: now, LastUpdatedTime: now})
	return b
}

// floorStore is floor-redis's store: an instance is a hash of its fields,
// its events a list.
type floorStore struct{ rdb *redis.Client }

var floorFields = []string{"name", "status", "input", "custom", "output", "created", "updated"}

func floorInstKey(id string) string   { return "floor:{" + id + "}:inst" }
func floorEventsKey(id string) string { return "floor:{" + id + "}:events" }

// create records instance id; with no engine to run it, it is recorded
// Completed, as the other floors answer.
func (fs floorStore) create(ctx context.Context, id string, input []byte) error {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	return fs.rdb.HSet(ctx, floorInstKey(id), "name", "ReserveTicket", "status", "Completed", "input", input,
		"custom", floorCustom, "output", "true", "created", now, "updated", now).Err()
}

func (fs floorStore) raise(ctx context.Context, id string, data []byte) error {
	return fs.rdb.RPush(ctx, floorEventsKey(id), data).Err()
}

// get is the status of instance id, or nil when it is not recorded.
func (fs floorStore) get(ctx context.Context, id string) ([]byte, error) {
	v, err := fs.rdb.HMGet(ctx, floorInstKey(id), floorFields...).Result()
	if err != nil || v[0] == nil {
		return nil, err
	}
	f := func(i int) string { s, _ := v[i].(string); return s }
	input := f(2)
	if input == "" {
		input = "null"
	}
	return json.Marshal(floorStatus{Name: f(0), InstanceID: id, RuntimeStatus: f(1),
		Input: json.RawMessage(input), CustomStatus: json.RawMessage(f(3)), Output: json.RawMessage(f(4)),
		CreatedTime: f(5), LastUpdatedTime: f(6)})
}

// floorMain serves variant on a loopback port until killed, saying where
// on its first line as cairn serve does.
func floorMain(variant string) {
	h, err := floorHandler(variant, os.Getenv(floorRedisEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("cairn: serving http://%s (%s)\n", l.Addr(), variant)
	err = (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(l)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// floorHandler is the floor server of variant; redisAddr is floor-redis's
// Redis.
func floorHandler(variant, redisAddr string) (http.Handler, error) {
	var h http.Handler
	switch variant {
	case floorNetHTTP:
		mux := http.NewServeMux()
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
		mux.HandleFunc("POST "+dfBase+"/orchestrators/{name}/{id}", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			b, loc := floorStart(r.Host, r.PathValue("id"))
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusAccepted)
			w.Write(b)
		})
		mux.HandleFunc("POST "+dfBase+"/instances/{id}/raiseEvent/{event}", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
		mux.HandleFunc("GET "+dfBase+"/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write(floorGet(r.PathValue("id")))
		})
		h = mux
	case floorGin:
		gin.SetMode(gin.ReleaseMode)
		g := gin.New()
		g.GET("/readyz", func(c *gin.Context) { c.Status(http.StatusOK) })
		g.POST(dfBase+"/orchestrators/:name/:id", func(c *gin.Context) {
			if _, err := io.ReadAll(c.Request.Body); err != nil {
				c.AbortWithStatus(http.StatusBadRequest)
				return
			}
			b, loc := floorStart(c.Request.Host, c.Param("id"))
			c.Header("Location", loc)
			c.Data(http.StatusAccepted, "application/json; charset=utf-8", b)
		})
		g.POST(dfBase+"/instances/:id/raiseEvent/:event", func(c *gin.Context) {
			if _, err := io.ReadAll(c.Request.Body); err != nil {
				c.AbortWithStatus(http.StatusBadRequest)
				return
			}
			c.Status(http.StatusAccepted)
		})
		g.GET(dfBase+"/instances/:id", func(c *gin.Context) {
			c.Data(http.StatusOK, "application/json; charset=utf-8", floorGet(c.Param("id")))
		})
		h = g
	case floorRedis:
		if redisAddr == "" {
			return nil, fmt.Errorf("%s needs a Redis address", variant)
		}
		fs := floorStore{rdb: redis.NewClient(&redis.Options{Addr: redisAddr})}
		if err := fs.rdb.Ping(context.Background()).Err(); err != nil {
			return nil, fmt.Errorf("%s: Redis at %s: %w", variant, redisAddr, err)
		}
		gin.SetMode(gin.ReleaseMode)
		g := gin.New()
		g.GET("/readyz", func(c *gin.Context) { c.Status(http.StatusOK) })
		g.POST(dfBase+"/orchestrators/:name/:id", func(c *gin.Context) {
			input, err := io.ReadAll(c.Request.Body)
			if err != nil {
				c.AbortWithStatus(http.StatusBadRequest)
				return
			}
			if err := fs.create(c.Request.Context(), c.Param("id"), input); err != nil {
				c.AbortWithStatus(http.StatusServiceUnavailable)
				return
			}
			b, loc := floorStart(c.Request.Host, c.Param("id"))
			c.Header("Location", loc)
			c.Data(http.StatusAccepted, "application/json; charset=utf-8", b)
		})
		g.POST(dfBase+"/instances/:id/raiseEvent/:event", func(c *gin.Context) {
			data, err := io.ReadAll(c.Request.Body)
			if err != nil {
				c.AbortWithStatus(http.StatusBadRequest)
				return
			}
			if err := fs.raise(c.Request.Context(), c.Param("id"), data); err != nil {
				c.AbortWithStatus(http.StatusServiceUnavailable)
				return
			}
			c.Status(http.StatusAccepted)
		})
		g.GET(dfBase+"/instances/:id", func(c *gin.Context) {
			b, err := fs.get(c.Request.Context(), c.Param("id"))
			switch {
			case err != nil:
				c.AbortWithStatus(http.StatusServiceUnavailable)
			case b == nil:
				c.AbortWithStatus(http.StatusNotFound)
			default:
				c.Data(http.StatusOK, "application/json; charset=utf-8", b)
			}
		})
		h = g
	default:
		return nil, fmt.Errorf("unknown floor variant %q", variant)
	}
	return h, nil
}

// startFloor starts the floor server of variant as a child process of the
// bench (this binary, with floorEnv set) and waits until it is ready.
func startFloor(ctx context.Context, variant, redisAddr, logPath string) (*serveChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cairn-bench-floor-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), floorEnv+"="+variant, floorRedisEnv+"="+redisAddr)
	return startChild(ctx, cmd, dir, logPath, variant)
}

// startChild starts cmd, a server that says on its first line of stdout
// where it serves ("cairn: serving http://…"), with its stderr appended to
// logPath, and waits until its /readyz answers 200. dir is the child's
// working directory, removed when it stops.
func startChild(ctx context.Context, cmd *exec.Cmd, dir, logPath, what string) (*serveChild, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s's log: %w", what, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	s := &serveChild{cmd: cmd, dir: dir}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case line := <-lines:
		rest, ok := strings.CutPrefix(line, "cairn: serving ")
		base, _, _ := strings.Cut(rest, " ")
		if !ok || !strings.HasPrefix(base, "http://") {
			s.stop()
			return nil, fmt.Errorf("%s did not start (see %s): %q", what, logPath, line)
		}
		s.base = base
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not start within 60 s (see %s)", what, logPath)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	for t0 := time.Now(); ; {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Since(t0) > 30*time.Second {
			s.stop()
			return nil, fmt.Errorf("%s not ready within 30 s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isFloor(variant string) bool { return slices.Contains(floorVariants, variant) }

// renderFloor says what the floor servers cost per call and what of cairn
// serve's CPU per call is above them.
func renderFloor(w func(string, ...any), rs []FlowResult) {
	perCall := func(s FlowSample) float64 { return s.ServerUSPerCall }
	var serve []float64
	for _, r := range rs {
		if r.Variant == flowPoll {
			serve = flowField(r.Samples, perCall)
		}
	}
	for _, r := range rs {
		if !isFloor(r.Variant) || len(r.Samples) == 0 {
			continue
		}
		fl := flowField(r.Samples, perCall)
		what := "no engine and no store (start answers 202 with the management URLs, raiseEvent 202, GET status 200 Completed, bodies encoded with encoding/json)"
		if r.Variant == floorRedis {
			what = "gin, no engine, and one Redis command per call through go-redis's pool (start HSETs the instance's record, raiseEvent RPUSHes the event, GET status HMGETs the record; answers as floor-gin's)"
		}
		w("- %s: the same client and calls against a server of the bench with %s: %s µs of CPU per call", r.Variant, what, cell(fl))
		if len(serve) > 0 {
			w("; cairn serve's %s µs per call is %s µs above it", cell(serve), fmt.Sprintf("%.0f", median(serve)-median(fl)))
		}
		w(".\n")
	}
}
