// Package httpapi serves cairn over HTTP: the Azure Durable Functions instance-management API and cairn's own /v1 endpoints.
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// dfBase is the Durable Functions webhook base path.
const dfBase = "/runtime/webhooks/durabletask"

// DefaultMaxBodyBytes bounds request bodies (inputs, event payloads,
// definitions) when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Backend is what the API needs from the store. redisstore.Store satisfies it.
//
// Every call returns by its context's deadline, whatever the store does,
// with an error that wraps the context's error when the deadline (or the
// client going away) ended it: the API calls the store on the handler's
// goroutine and answers 503 "timeout". A store out of reach or unable to
// serve for now (a lost connection, a server loading its data, a cluster
// between masters) answers an error that errors.Is
// interpreter.ErrUnavailable: 503 "unavailable", worth retrying. Any other
// error is the request's (the interpreter's sentinels) or a bug (500).
type Backend interface {
	// CreateInstance writes a new instance and its start work item;
	// interpreter.ErrAlreadyRunning when the id is Pending, Running or
	// Suspended.
	CreateInstance(ctx context.Context, n interpreter.NewInstance) error
	// RaiseEvent delivers an external event; ErrNotFound, ErrFinished.
	RaiseEvent(ctx context.Context, id interpreter.InstanceID, name string, data json.RawMessage, now time.Time) error
	// SignalWithStart raises the event into n's instance, starting n first
	// when no unfinished instance has its id, in one atomic step; started
	// says whether it started it.
	SignalWithStart(ctx context.Context, n interpreter.NewInstance, name string, data json.RawMessage) (started bool, err error)
	// SendControl queues a terminate, suspend or resume; ErrNotFound,
	// ErrFinished.
	SendControl(ctx context.Context, id interpreter.InstanceID, ev interpreter.Event) error
	FetchStatus(ctx context.Context, id interpreter.InstanceID) (*interpreter.InstanceStatus, error)
	FetchHistory(ctx context.Context, id interpreter.InstanceID) ([]interpreter.HistoryEvent, error)
	// ListInstances returns one page and the token of the next ("" = last).
	ListInstances(ctx context.Context, q interpreter.ListQuery) ([]interpreter.InstanceStatus, string, error)
	Purge(ctx context.Context, id interpreter.InstanceID) error
	PurgeMany(ctx context.Context, from, to time.Time, statuses []interpreter.RuntimeStatus) (int, error)

	// PutDefinition stores a definition version; created reports whether
	// the workflow name was new.
	PutDefinition(ctx context.Context, name, hash string, src []byte, now time.Time) (created bool, err error)
	LoadDefinition(ctx context.Context, name, hash string) ([]byte, error)
	// LatestDefinition returns the hash of the newest version of name.
	LatestDefinition(ctx context.Context, name string) (string, error)
	DescribeDefinition(ctx context.Context, name string) (*interpreter.DefinitionInfo, error)
	ListDefinitions(ctx context.Context) ([]interpreter.DefinitionInfo, error)

	// WatchStatus subscribes to the instance's status changes until ctx
	// ends or the returned func is called, either of which unsubscribes
	// and closes the channel. ctx bounds the subscription's life, not the
	// subscribing: the API gives up waiting for it at its own bound.
	WatchStatus(ctx context.Context, id interpreter.InstanceID) (<-chan interpreter.StatusChange, func(), error)
	Ping(ctx context.Context) error
}

// Catalog returns parsed definitions by content hash; *interpreter.Catalog
// satisfies it. Its calls return by their context's deadline, as the
// Backend's do.
type Catalog interface {
	Get(ctx context.Context, name, hash string) (*dsl.Workflow, error)
	// HasEventSchemas reports whether some definition it keeps declares
	// an `events:` payload schema: only then does a raise read the
	// instance's definition to check its payload.
	HasEventSchemas() bool
}

// Config configures the handler. Backend is required.
type Config struct {
	Backend Backend
	// Catalog caches parsed definitions; nil = a new interpreter.Catalog
	// over Backend.
	Catalog Catalog
	// APIKeys are the accepted keys; empty = no authentication (main then
	// binds to loopback only).
	APIKeys []string
	// MaxBodyBytes bounds every request body; 0 = DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Clock gives the current time; nil = time.Now.
	Clock func() time.Time
	// Logger receives request errors; nil = slog.Default().
	Logger *slog.Logger
	// KeepAlive is the interval of SSE keep-alive comments; 0 = 15s.
	KeepAlive time.Duration
	// StoreTimeout bounds each call to the store (a purge by time range
	// gets twelve times as long); a call that takes longer answers 503
	// "timeout", so no request hangs on a store that does not answer.
	// 0 = DefaultStoreTimeout.
	StoreTimeout time.Duration
	// UI, when set, serves the progress pages (web.New) under /ui. The
	// pages and their assets hold no data and are served without a key
	// (a browser cannot send one when it opens a page); their data calls
	// under /ui/api/ need one, like every other path.
	UI http.Handler
	// Tasks serves the external-worker protocol under /v1/tasks; nil =
	// Backend, when it implements TaskBackend (redisstore.Store does).
	Tasks TaskBackend
	// TaskLease is how long a polled task stays with its worker without a
	// heartbeat; 0 = DefaultTaskLease.
	TaskLease time.Duration
	// Metrics, when set, records every request and is served at GET
	// /metrics, behind the API keys like every other path (metrics.go).
	Metrics Metrics
}

type server struct {
	be        Backend
	cat       Catalog
	keys      [][32]byte
	maxBody   int64
	now       func() time.Time
	log       *slog.Logger
	keepAlive time.Duration
	ui        bool // Config.UI is set
	tasks     TaskBackend
	lease     time.Duration
	sched     *interpreter.Scheduler // nil when the store keeps no schedules (schedules.go)
	counts    CountBackend           // nil: GET /v1/stats answers 501
	bulkBE    BulkBackend            // nil: POST /v1/bulk/{op} answers 501
	guard     *guarded
}

var ginMode sync.Once

// New returns the API handler.
func New(cfg Config) http.Handler {
	return trimTrailingSlash(newEngine(cfg))
}

func newEngine(cfg Config) *gin.Engine {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	s := &server{
		be:        cfg.Backend,
		cat:       cfg.Catalog,
		keys:      hashKeys(cfg.APIKeys),
		maxBody:   cfg.MaxBodyBytes,
		now:       cfg.Clock,
		log:       cfg.Logger,
		keepAlive: cfg.KeepAlive,
		ui:        cfg.UI != nil,
		tasks:     cfg.Tasks,
		lease:     cfg.TaskLease,
	}
	if s.tasks == nil {
		s.tasks, _ = cfg.Backend.(TaskBackend)
	}
	s.counts, _ = cfg.Backend.(CountBackend)
	s.bulkBE, _ = cfg.Backend.(BulkBackend)
	if s.lease <= 0 {
		s.lease = DefaultTaskLease
	}
	if s.cat == nil {
		s.cat = interpreter.NewCatalog(cfg.Backend)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.keepAlive <= 0 {
		s.keepAlive = 15 * time.Second
	}
	timeout := cfg.StoreTimeout
	if timeout <= 0 {
		timeout = DefaultStoreTimeout
	}
	g := &guarded{be: s.be, cat: s.cat, timeout: timeout, log: s.log}
	s.be, s.cat, s.guard = g, g, g
	s.sched = newScheduler(cfg, s)

	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	// Match on the escaped path so an id holding %2F stays one segment and
	// is then refused by the id rules instead of missing every route.
	e.UseEscapedPath = true
	e.UnescapePathValues = true
	if cfg.Metrics != nil {
		e.Use(observe(cfg.Metrics))
	}
	e.Use(s.recovery, s.auth)
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, &apiError{http.StatusNotFound, "not-found", "no route for " + c.Request.Method + " " + c.Request.URL.Path})
	})
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, &apiError{http.StatusMethodNotAllowed, "method-not-allowed",
			"method " + c.Request.Method + " is not allowed here; allowed: " + c.Writer.Header().Get("Allow")})
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/v1/openapi.json", serveOpenAPI)
	if cfg.Metrics != nil {
		e.GET("/metrics", gin.WrapH(cfg.Metrics.Handler()))
	}

	df := e.Group(dfBase)
	df.POST("/orchestrators/:name", s.start)
	df.POST("/orchestrators/:name/:id", s.start)
	df.GET("/instances", s.list)
	df.DELETE("/instances", s.purgeMany)
	df.GET("/instances/:id", s.status)
	df.DELETE("/instances/:id", s.purge)
	df.POST("/instances/:id/raiseEvent/:event", s.raiseEvent)
	df.POST("/instances/:id/terminate", s.control(interpreter.EvTerminate))
	df.POST("/instances/:id/suspend", s.control(interpreter.EvSuspend))
	df.POST("/instances/:id/resume", s.control(interpreter.EvResume))
	df.POST("/instances/:id/restart", s.restart)

	v1 := e.Group("/v1")
	v1.GET("/workflows", s.listWorkflows)
	v1.GET("/workflows/:name", s.getWorkflow)
	v1.PUT("/workflows/:name", s.putWorkflow)
	v1.POST("/validate", s.validate)
	v1.GET("/instances/:id/events", s.events)
	v1.POST("/instances/:id/events/:event", s.signalWithStart)
	s.scheduleRoutes(v1)
	v1.GET("/stats", s.stats)
	v1.POST("/bulk/:op", s.bulk)
	tasks := v1.Group("/tasks", s.requireTasks)
	tasks.POST("/poll", s.pollTask)
	tasks.POST("/:task/complete", s.completeTask)
	tasks.POST("/:task/fail", s.failTask)
	tasks.POST("/:task/heartbeat", s.heartbeatTask)

	if cfg.UI != nil {
		e.GET("/ui", gin.WrapH(cfg.UI))
		e.GET("/ui/*path", gin.WrapH(cfg.UI))
	}
	return e
}

// trimTrailingSlash makes /instances/ behave like /instances: DF's official
// clients send both, and a redirect would turn a POST into a GET in some.
func trimTrailingSlash(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			u := *r.URL
			u.Path = strings.TrimRight(p, "/")
			if u.Path == "" {
				u.Path = "/"
			}
			if u.RawPath != "" {
				u.RawPath = strings.TrimRight(u.RawPath, "/")
			}
			r2 := r.Clone(r.Context())
			r2.URL = &u
			r = r2
		}
		h.ServeHTTP(w, r)
	})
}

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.be.Ping(ctx); err != nil {
		s.fail(c, &apiError{http.StatusServiceUnavailable, "not-ready", "the store does not answer"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
