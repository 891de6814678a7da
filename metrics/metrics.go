// Package metrics keeps cairn's Prometheus metrics: counters and histograms fed by the engine, the activity runtime and the API, and gauges read from the store when Prometheus scrapes.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// DefaultReadTimeout bounds the store reads of one scrape when
// Options.ReadTimeout is 0: well under Prometheus's default scrape timeout
// (10s), so a slow store costs gauges, never the scrape.
const DefaultReadTimeout = 2 * time.Second

// Store is what the scrape-time gauges read; redisstore.Store satisfies it.
type Store interface {
	// WorkBacklog returns the number of work items no engine has taken.
	WorkBacklog(ctx context.Context) (int64, error)
	// TasksWaiting returns, per queue, how many activity tasks wait for a
	// runtime or worker, and when the oldest of them was queued (absent
	// when none waits).
	TasksWaiting(ctx context.Context, queues []string) (map[string]int64, map[string]time.Time, error)
	// UsedMemory returns the memory the store's servers use, in bytes.
	UsedMemory(ctx context.Context) (int64, error)
}

// Options configures a Metrics. Every field is optional.
type Options struct {
	// Store is read at each scrape for cairn_work_backlog,
	// cairn_tasks_pending, cairn_tasks_oldest_age_seconds and
	// cairn_redis_used_memory_bytes; nil = none of these gauges.
	Store Store
	// Queues returns the task queues whose waiting tasks are counted
	// (see TaskQueues); nil = the in-process runtime's queue only.
	Queues func(ctx context.Context) ([]string, error)
	// Counts returns the instances per workflow and runtime status, for
	// the cairn_instances gauge: workflow → status → count. nil = no
	// such gauge.
	Counts func(ctx context.Context) (map[string]map[string]int64, error)
	// Unreplicated counts the acknowledged writes no replica confirmed
	// under --durability replica, for cairn_store_unreplicated_writes_total;
	// nil = no such counter.
	Unreplicated func() int64
	// ReadTimeout bounds all store reads of one scrape together; 0 =
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// Clock gives the current time, for the age of the oldest waiting
	// task; nil = time.Now.
	Clock func() time.Time
	// Logger hears when a gauge's read starts failing and when it works
	// again (once each, not at every scrape); nil = slog.Default().
	Logger *slog.Logger
	// TracerProvider receives a span per transition and per activity
	// attempt from the observers Engine and Activity return (see
	// Tracing); nil = no spans (TracerProviderFromEnv gives nil when
	// tracing is off).
	TracerProvider trace.TracerProvider
}

// Metrics is one process's metrics, in a registry of its own (not
// Prometheus's global one), so tests and embedders can make several.
// Its methods are safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	opts    Options
	tracing *Tracing

	started       *prometheus.CounterVec
	finished      *prometheus.CounterVec
	transitions   *prometheus.CounterVec
	transitionDur prometheus.Histogram
	timerLag      prometheus.Histogram
	reclaimed     prometheus.Counter
	scheduleRuns  *prometheus.CounterVec

	activityRuns      *prometheus.CounterVec
	activityAbandoned *prometheus.CounterVec
	activityDur       *prometheus.HistogramVec
	activityWait      *prometheus.HistogramVec

	httpRequests *prometheus.CounterVec
	httpDur      *prometheus.HistogramVec
	sseStreams   prometheus.Gauge

	storeErrors *prometheus.CounterVec
}

// Store error kinds that this package counts itself; the engine's store
// calls count under their own names (read, load, commit, ack, timers,
// reclaim, trim, expire).
const (
	KindBacklog   = "gauge_backlog"
	KindTasks     = "gauge_tasks"
	KindMemory    = "gauge_memory"
	KindInstances = "gauge_instances"
	// KindAPI is an API request answered 503 because the store was out
	// of reach or too slow.
	KindAPI = "api"
)

// New returns the metrics of one process, with the Go runtime's and the
// process's collectors registered.
func New(opts Options) *Metrics {
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		opts:    opts,
		tracing: NewTracing(opts.TracerProvider),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_instances_started_total",
			Help: "Instances whose first transition this process committed.",
		}, []string{"workflow"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_instances_finished_total",
			Help: "Instances that ended (Completed, Failed or Terminated) in a transition this process committed.",
		}, []string{"workflow", "status"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_transitions_total",
			Help: "Transitions committed by this process's engine.",
		}, []string{"workflow"}),
		transitionDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_transition_duration_seconds",
			Help:    "Time of one transition, from the load (or cache look-up) of the instance to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. 4s
		}),
		timerLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_timer_lag_seconds",
			Help:    "How late durable timers fired: the time their work item was queued minus their due time.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_work_reclaimed_total",
			Help: "Work items this engine took over from an engine that held them past their lease.",
		}),
		scheduleRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_schedule_runs_total",
			Help: "Schedule ticks this process's scheduler decided, by outcome (started, skipped, missed, buffered).",
		}, []string{"schedule", "outcome"}),
		activityRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_activity_executions_total",
			Help: "Activity attempts the in-process runtime ran, by outcome (completed, failed, timed_out).",
		}, []string{"activity", "outcome"}),
		activityAbandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_activity_abandoned_total",
			Help: "Activity attempts the in-process runtime stopped without an outcome (lease lost, shutdown, store unreadable); they run again elsewhere.",
		}, []string{"activity"}),
		activityDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_activity_duration_seconds",
			Help:    "Time of one activity attempt in the in-process runtime, start to outcome.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"activity"}),
		activityWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_activity_schedule_to_start_seconds",
			Help:    "Time an activity task waited in its queue before the in-process runtime started it.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"activity"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_http_requests_total",
			Help: "HTTP requests answered, by route pattern (\"unmatched\" when none matched), method and status code.",
		}, []string{"route", "method", "code"}),
		httpDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method (status streams: their whole life).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		sseStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_sse_streams",
			Help: "Status streams (Server-Sent Events) open now.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_store_errors_total",
			Help: "Store calls that failed, by kind: the engine's call (read, load, commit, ack, timers, reclaim, trim, expire), a scrape's gauge read (gauge_*), or an API request answered 503 (api).",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.started, m.finished, m.transitions, m.transitionDur, m.timerLag, m.reclaimed, m.scheduleRuns,
		m.activityRuns, m.activityAbandoned, m.activityDur, m.activityWait,
		m.httpRequests, m.httpDur, m.sseStreams, m.storeErrors,
		&storeCollector{m: m, failing: map[string]bool{}},
	)
	if opts.Unreplicated != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cairn_store_unreplicated_writes_total",
			Help: "Acknowledged writes no replica confirmed within --replica-timeout under --durability replica (a master without replicas, or replicas far behind): a failover of that master could lose them.",
		}, func() float64 { return float64(opts.Unreplicated()) }))
	}
	return m
}

// Registry returns the registry the metrics are kept in, for embedders
// that add their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus's text format (or OpenMetrics
// when asked). A gauge whose store read fails is left out and counted in
// cairn_store_errors_total; the scrape itself still succeeds.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		ErrorLog:          slog.NewLogLogger(m.opts.Logger.Handler(), slog.LevelWarn),
		EnableOpenMetrics: true,
	})
}

// StoreError counts one failed store call of kind.
func (m *Metrics) StoreError(kind string) { m.storeErrors.WithLabelValues(kind).Inc() }

// ObserveRequest records one answered HTTP request. route is the matched
// pattern ("" = none matched), never the path itself: a path holds
// instance ids, which would make a series per instance.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	method = knownMethod(method)
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDur.WithLabelValues(route, method).Observe(d.Seconds())
}

// StreamOpened counts an open status stream until the returned func is
// called (once).
func (m *Metrics) StreamOpened() (closed func()) {
	m.sseStreams.Inc()
	var once sync.Once
	return func() { once.Do(m.sseStreams.Dec) }
}

// knownMethod keeps the method label bounded: a client may send any token
// as a method.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}
