package main

// The HTTP floor: what a Go server with no engine and no store costs per
// call on this machine, driven by the same client the same way as cairn
// serve in ReserveTicket over HTTP. A child process of the bench answers
// the three calls of an instance (start 202 with Durable Functions'
// management URLs, raiseEvent 202, GET status 200 Completed) at once, as a
// plain net/http ServeMux or as gin, the router cairn's API is built on.
// Its CPU per call is the part of cairn serve's that the kernel's loopback
// TCP, net/http and the router take whatever the handlers do.

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
)

// floorEnv, in a child's environment, makes the bench binary the floor
// server of the variant it names.
const floorEnv = "CAIRN_BENCH_FLOOR"

// Floor variants.
const (
	floorNetHTTP = "floor-nethttp" // net/http's ServeMux
	floorGin     = "floor-gin"
)

var floorVariants = []string{floorNetHTTP, floorGin}

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

func floorGet(id string) []byte {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(floorStatus{Name: "ReserveTicket", InstanceID: id, RuntimeStatus: "Completed",
		Input: json.RawMessage(`"user-1"`), CustomStatus: json.RawMessage(`{"discount":20,"discountTimeout":60,"bookingUrl":"https://example.com/book/user-1"}`),
		Output: json.RawMessage(`true`), CreatedTime: now, LastUpdatedTime: now})
	return b
}

// floorMain serves variant on a loopback port until killed, saying where
// on its first line as cairn serve does.
func floorMain(variant string) {
	h, err := floorHandler(variant)
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

// floorHandler is the floor server of variant.
func floorHandler(variant string) (http.Handler, error) {
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
	default:
		return nil, fmt.Errorf("unknown floor variant %q", variant)
	}
	return h, nil
}

// startFloor starts the floor server of variant as a child process of the
// bench (this binary, with floorEnv set) and waits until it is ready.
func startFloor(ctx context.Context, variant, logPath string) (*serveChild, error) {
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
	cmd.Env = append(os.Environ(), floorEnv+"="+variant)
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
		w("- %s: the same client and calls against a server of the bench with no engine and no store (start answers 202 with the management URLs, raiseEvent 202, GET status 200 Completed, bodies encoded with encoding/json): %s µs of CPU per call", r.Variant, cell(fl))
		if len(serve) > 0 {
			w("; cairn serve's %s µs per call is %s µs above it", cell(serve), fmt.Sprintf("%.0f", median(serve)-median(fl)))
		}
		w(".\n")
	}
}
