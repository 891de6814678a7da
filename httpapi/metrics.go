package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Metrics records the API's requests and serves GET /metrics;
// *metrics.Metrics satisfies it.
type Metrics interface {
	// ObserveRequest records one answered request; route is the matched
	// pattern, "" when none matched.
	ObserveRequest(route, method string, code int, d time.Duration)
	// StreamOpened counts an open status stream until closed is called.
	StreamOpened() (closed func())
	// StoreError counts a failed store call of kind.
	StoreError(kind string)
	// Handler serves the metrics.
	Handler() http.Handler
}

// eventsRoute is the pattern of the status stream (events.go).
const eventsRoute = "/v1/instances/:id/events"

// storeErrorKind is the kind an API request answered 503 counts under:
// the API answers 503 only when the store is out of reach or too slow
// (statusOf), /readyz included.
const storeErrorKind = "api"

// observe is the first middleware when Config.Metrics is set: it times
// every request, the ones refused by auth and the ones that panic
// included, and labels it with the route pattern, never the path, which
// holds instance ids.
func observe(m Metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		began := time.Now()
		route := c.FullPath()
		if route == eventsRoute {
			closed := m.StreamOpened()
			defer closed()
		}
		defer func() {
			code := c.Writer.Status()
			m.ObserveRequest(route, c.Request.Method, code, time.Since(began))
			if code == http.StatusServiceUnavailable {
				m.StoreError(storeErrorKind)
			}
		}()
		c.Next()
	}
}

// NewOps returns the handler of a process that serves no API (cairn serve
// --role engine): /healthz, /readyz (when cfg.Backend is set) and
// /metrics (when cfg.Metrics is set), behind cfg.APIKeys as the API is.
// Every other path is 404.
func NewOps(cfg Config) http.Handler {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	s := &server{be: cfg.Backend, keys: hashKeys(cfg.APIKeys), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	if cfg.Metrics != nil {
		e.Use(observe(cfg.Metrics))
	}
	e.Use(s.recovery, s.auth)
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, &apiError{http.StatusNotFound, "not-found", "no route for " + c.Request.Method + " " + c.Request.URL.Path +
			" (this process runs the engine only: /healthz, /readyz and /metrics)"})
	})
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, &apiError{http.StatusMethodNotAllowed, "method-not-allowed", "method " + c.Request.Method + " is not allowed here"})
	})
	e.GET("/healthz", s.healthz)
	if cfg.Backend != nil {
		e.GET("/readyz", s.readyz)
	}
	if cfg.Metrics != nil {
		e.GET("/metrics", gin.WrapH(cfg.Metrics.Handler()))
	}
	return e
}
