package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/httpapi"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/metrics"
	"github.com/cairnhq/cairn/redisstore"
	"github.com/cairnhq/cairn/schema"
	"github.com/cairnhq/cairn/web"
)

// Shutdown bounds.
const (
	// streamGrace is how long ordinary requests get to finish before the
	// status streams (which never end on their own) are cut.
	streamGrace = time.Second
	// httpShutdownTimeout bounds the whole HTTP shutdown.
	httpShutdownTimeout = 15 * time.Second
	// redisConnectTimeout bounds the first contact with --redis.
	redisConnectTimeout = 15 * time.Second
)

// defaultRetention keeps finished instances 30 days, as the Durable Task
// Scheduler does: Redis holds everything in memory, and "forever" would
// fill it. --retention forever keeps them until purged.
const defaultRetention = "30d"

// privateRedisDir holds the embedded default's data, relative to the
// working directory.
var privateRedisDir = filepath.Join(".cairn", "redis")

// serveConfig is what cairn serve runs with.
type serveConfig struct {
	addr       string
	redisURL   string // "" = start a private redis-server
	workflows  string // folder of *.yaml deployed at start; "" = none
	apiKeys    []string
	partitions int
	role       string // api, engine or all
	retention  redisstore.Retention
	history    int // transitions kept per instance; redisstore.NoHistory = none
	// addrSet: --addr or CAIRN_ADDR was given. Only then does an
	// engine-only process listen (for /metrics and /healthz): several of
	// them on one host would otherwise all want the default port.
	addrSet   bool
	logFormat string // text or json
	logLevel  slog.Level
	pprof     string // loopback address for net/http/pprof; "" = off
	// lease: how long a work item or activity task may go unacknowledged
	// (or unrenewed) before another engine takes it over; heartbeat: how
	// often an engine announces itself (silent for 3 beats: taken over).
	lease, heartbeat time.Duration
	// httpConcurrency: the most http binding calls the activity runtime
	// has in flight at once.
	httpConcurrency int
	// durability: none, replica or fsync; "" picks by topology
	// (durabilityFor). replicaTimeout bounds a replica's acknowledgement.
	durability     string
	replicaTimeout time.Duration
}

// durabilityFor is the --durability a deployment gets when it names none:
// replica on a Redis Cluster, whose masters fail over to replicas that
// may lack the last writes; none on one Redis, where a killed
// redis-server with append-only loses nothing it answered (fsync costs
// every write a disk flush; docs/scaling.md has the figures).
func durabilityFor(setting string, cluster bool) (redisstore.Durability, error) {
	if setting == "" {
		if cluster {
			return redisstore.DurabilityReplica, nil
		}
		return redisstore.DurabilityNone, nil
	}
	return redisstore.ParseDurability(setting)
}

func (c *serveConfig) http() bool   { return c.role == "api" || c.role == "all" }
func (c *serveConfig) engine() bool { return c.role == "engine" || c.role == "all" }

// listen reports whether the process serves HTTP: the API, or only
// /metrics and /healthz for an engine given an address.
func (c *serveConfig) listen() bool { return c.http() || c.addrSet }

func (a *app) serve(args []string) int {
	fs := a.flagSet("serve", "[flags]", `
Run cairn: the HTTP API (Durable Functions compatible, plus /v1) and the
engine that runs workflow instances, against Redis. Without --redis it
starts a private redis-server on a free loopback port with its data in
.cairn/redis (append-only file on) and stops it on exit. Workflows in
--workflows are linted and deployed at start; any lint error stops the
start. Without an API key the API only listens on loopback addresses.
Every flag has an environment variable; the flag wins.
SIGINT/SIGTERM stop it gracefully: HTTP first, then the engine's
in-flight transitions, then the private redis.`, `
  cairn serve --workflows workflows/
  cairn serve --addr 0.0.0.0:8080 --api-key "$(openssl rand -hex 16)" --redis redis://redis.internal:6379/0
  CAIRN_REDIS=rediss://:secret@cache:6380 cairn serve --role engine     # engine only, scale out
  cairn serve --role api --redis redis://127.0.0.1:6379                 # API only`)
	cfg := serveConfig{}
	fs.StringVar(&cfg.addr, "addr", a.env("CAIRN_ADDR", "127.0.0.1:8080"), "HTTP listen address (env CAIRN_ADDR)")
	fs.StringVar(&cfg.redisURL, "redis", a.getenv("CAIRN_REDIS"), "Redis URL redis://[user:pass@]host:port[/db] or rediss:// for TLS; a comma list of URLs means Redis Cluster nodes (env CAIRN_REDIS; default: a private redis-server)")
	fs.StringVar(&cfg.workflows, "workflows", a.getenv("CAIRN_WORKFLOWS"), "folder whose *.yaml workflows are linted and deployed at start (env CAIRN_WORKFLOWS)")
	keys := fs.String("api-key", a.getenv("CAIRN_API_KEYS"), "accepted API keys, comma list (env CAIRN_API_KEYS); without one the API serves loopback only")
	fs.IntVar(&cfg.partitions, "partitions", envInt(a, "CAIRN_PARTITIONS", 16), "number of partitions, fixed per deployment (env CAIRN_PARTITIONS)")
	fs.StringVar(&cfg.role, "role", a.env("CAIRN_ROLE", "all"), "what this process runs: api, engine or all (env CAIRN_ROLE)")
	retention := fs.String("retention", a.env("CAIRN_RETENTION", defaultRetention), "how long finished instances stay: forever, none, an age since they finished (72h, 7d), a count of the newest (100000), or both (7d,100000) (env CAIRN_RETENTION)")
	fs.IntVar(&cfg.history, "history", envInt(a, "CAIRN_HISTORY", 100), "history kept per instance, in transitions; 0 keeps none (env CAIRN_HISTORY)")
	fs.StringVar(&cfg.logFormat, "log-format", a.env("CAIRN_LOG_FORMAT", "text"), "log format on stderr: text (key=value) or json (one object a line) (env CAIRN_LOG_FORMAT)")
	fs.StringVar(&cfg.pprof, "pprof", a.getenv("CAIRN_PPROF"), "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060 (env CAIRN_PPROF; default off)")
	fs.DurationVar(&cfg.lease, "lease", envDuration(a, "CAIRN_LEASE", 30*time.Second), "how long work an engine read, or an activity task it runs, may go unfinished and unrenewed before another engine takes it over (env CAIRN_LEASE)")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", envDuration(a, "CAIRN_HEARTBEAT", time.Second), "how often an engine announces itself in Redis; one silent for three beats is taken for dead and its work taken over at once (env CAIRN_HEARTBEAT)")
	fs.StringVar(&cfg.durability, "durability", a.getenv("CAIRN_DURABILITY"), "what an acknowledged write waits for: replica (a replica has it: WAIT 1), fsync (the Redis runs appendfsync always; the private one is started so), none (the master's memory) (env CAIRN_DURABILITY; default replica on a cluster, none on one Redis)")
	fs.DurationVar(&cfg.replicaTimeout, "replica-timeout", envDuration(a, "CAIRN_REPLICA_TIMEOUT", time.Second), "with --durability replica, how long a write waits for a replica before it is answered anyway and logged as unreplicated (env CAIRN_REPLICA_TIMEOUT)")
	fs.IntVar(&cfg.httpConcurrency, "http-concurrency", envInt(a, "CAIRN_HTTP_CONCURRENCY", 256), "the most http binding calls the activity runtime has in flight at once; Go handlers and expr bindings keep a CPU-sized limit (env CAIRN_HTTP_CONCURRENCY)")
	level := fs.String("log-level", a.env("CAIRN_LOG_LEVEL", "info"), "least severe log level written: debug, info, warn or error (env CAIRN_LOG_LEVEL)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) != 0 {
		return a.usageError(fs, "unexpected argument %q", pos[0])
	}
	cfg.apiKeys = splitList(*keys)
	cfg.addrSet = a.getenv("CAIRN_ADDR") != ""
	fs.Visit(func(f *flag.Flag) { cfg.addrSet = cfg.addrSet || f.Name == "addr" })
	if err := cfg.logLevel.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(a.stderr, "cairn serve: --log-level must be debug, info, warn or error, not %q\n", *level)
		return exitUsage
	}
	if cfg.retention, err = redisstore.ParseRetention(*retention); err != nil {
		fmt.Fprintf(a.stderr, "cairn serve: --retention: %v\n", err)
		return exitUsage
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintf(a.stderr, "cairn serve: %v\n", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(a.stderr, cfg.logFormat, cfg.logLevel)
	if err := runServe(ctx, stop, cfg, log, a.stdout); err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			fmt.Fprintln(a.stderr, "cairn serve: interrupted while starting")
		} else {
			fmt.Fprintf(a.stderr, "cairn serve: %v\n", err)
		}
		return exitFailure
	}
	return exitOK
}

func envInt(a *app, name string, def int) int {
	if v := a.getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		return -1 // reported by check
	}
	return def
}

func envDuration(a *app, name string, def time.Duration) time.Duration {
	if v := a.getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		return -1 // reported by check
	}
	return def
}

func (c *serveConfig) check() error {
	switch c.role {
	case "api", "engine", "all":
	default:
		return fmt.Errorf("--role must be api, engine or all, not %q", c.role)
	}
	if c.partitions < 1 || c.partitions > 4096 {
		return fmt.Errorf("--partitions must be a number from 1 to 4096")
	}
	if c.history < 0 || c.history > 100000 {
		return fmt.Errorf("--history must be a number from 0 (keep none) to 100000")
	}
	if c.lease < time.Second {
		return fmt.Errorf("--lease must be a duration of at least 1s, such as 30s")
	}
	if c.heartbeat < 10*time.Millisecond || 3*c.heartbeat > c.lease {
		return fmt.Errorf("--heartbeat must be a duration from 10ms to a third of --lease (%s), such as 1s: "+
			"an engine silent for three beats is taken over, which must come before its lease runs out", c.lease)
	}
	if c.httpConcurrency < 1 || c.httpConcurrency > 100000 {
		return fmt.Errorf("--http-concurrency must be a number from 1 to 100000")
	}
	if c.durability != "" {
		if _, err := redisstore.ParseDurability(c.durability); err != nil {
			return fmt.Errorf("--%v", err)
		}
	}
	if c.replicaTimeout < time.Millisecond || c.replicaTimeout > time.Minute {
		return fmt.Errorf("--replica-timeout must be a duration from 1ms to 1m, such as 1s")
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)
	}
	if c.pprof != "" {
		if err := checkPprofAddr(c.pprof); err != nil {
			return err
		}
	}
	if c.listen() {
		host, _, err := net.SplitHostPort(c.addr)
		if err != nil {
			return fmt.Errorf("--addr %q: %v (want host:port, e.g. 127.0.0.1:8080)", c.addr, err)
		}
		if len(c.apiKeys) == 0 && !isLoopback(host) {
			risk := "start and terminate workflows"
			if !c.http() {
				risk = "read its metrics (workflow and activity names, load)"
			}
			return fmt.Errorf("refusing to serve %s without an API key: anyone who reaches it could %s. "+
				"Set --api-key / CAIRN_API_KEYS, or listen on a loopback address such as 127.0.0.1:8080", c.addr, risk)
		}
	}
	if c.redisURL != "" {
		if _, err := redisOptions(c.redisURL); err != nil {
			return err
		}
	}
	return nil
}

// newLogger returns serve's logger: text (logfmt-like key=value pairs) or
// JSON, one record a line, from level up.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runServe runs until ctx is cancelled or a component fails, then shuts
// down in order: HTTP, engine, Redis. stop restores the default signal
// handling, so a second Ctrl-C ends the process at once.
func runServe(ctx context.Context, stop func(), cfg serveConfig, log *slog.Logger, out io.Writer) (err error) {
	// Lint before anything starts: a broken workflow stops the start.
	defs, err := loadWorkflows(cfg.workflows, log)
	if err != nil {
		return err
	}
	if cfg.pprof != "" {
		ps, err := startPprof(cfg.pprof, log)
		if err != nil {
			return err
		}
		defer ps.Close()
	}

	// failed receives the first component failure.
	failed := make(chan error, 4)

	redisURL, redisNote := cfg.redisURL, ""
	if redisURL == "" {
		priv, err := startPrivateRedis(ctx, privateRedisDir, cfg.durability == "fsync")
		if err != nil {
			return err
		}
		stopping := make(chan struct{})
		defer func() {
			close(stopping)
			if serr := priv.Stop(); serr != nil {
				log.Error("stopping the private redis", "err", serr)
				err = errors.Join(err, serr)
			} else {
				log.Info("private redis stopped")
			}
		}()
		go func() {
			select {
			case <-stopping:
			case <-priv.Done():
				failed <- fmt.Errorf("the private redis-server exited: %s", priv.logTail())
			}
		}()
		redisURL = priv.URL()
		redisNote = " (private redis-server, data in " + privateRedisDir + ")"
	}

	opt, err := redisOptions(redisURL)
	if err != nil {
		return err
	}
	redis.SetLogger(redisLogger{log})
	rdb := redis.NewUniversalClient(opt)
	defer rdb.Close()
	_, cluster := rdb.(*redis.ClusterClient)
	durability, err := durabilityFor(cfg.durability, cluster)
	if err != nil {
		return err
	}
	hist := cfg.history
	if hist == 0 {
		hist = redisstore.NoHistory
	}
	store := redisstore.New(rdb, redisstore.Options{
		Partitions: cfg.partitions, HistoryMax: hist, Retention: cfg.retention, Logger: log,
		Durability: durability, ReplicaTimeout: cfg.replicaTimeout,
	})
	pctx, cancel := context.WithTimeout(ctx, redisConnectTimeout)
	err = store.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot reach Redis at %s: %w", redactURL(redisURL), err)
	}
	if err := store.Init(ctx); err != nil {
		if pe := (*redisstore.PartitionsError)(nil); errors.As(err, &pe) {
			return fmt.Errorf("--partitions %d does not match the %d partitions the data in Redis %s was written with; "+
				"start every process sharing it with --partitions %d", pe.Configured, pe.Stored, redactURL(redisURL), pe.Stored)
		}
		return fmt.Errorf("redis %s: %w", redactURL(redisURL), err)
	}
	log.Info("retention of finished instances", "retention", cfg.retention.String())
	log.Info("durability of acknowledged writes", "durability", durability.String())

	cat := interpreter.NewCatalog(store)
	// Go handlers registered here run in-process; the workflows' expr and
	// http bindings need none. Other activities wait for workers.
	reg := activity.NewRegistry()
	// Traces go out over OTLP/HTTP when the standard OTEL_EXPORTER_OTLP_*
	// variables say where; without them no span is made.
	tp, err := metrics.TracerProviderFromEnv(ctx, os.Getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	if tp != nil {
		// Deferred before the engine starts, so it runs after the engine
		// stopped: the last transitions' spans are sent too.
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				log.Warn("sending the last traces failed", "err", err)
			}
		}()
		endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
		if endpoint == "" {
			endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		}
		log.Info("tracing on: spans exported over OTLP/HTTP", "endpoint", redactURL(endpoint))
	}
	var unreplicated func() int64 // counted only where a write waits for a replica
	if durability == redisstore.DurabilityReplica {
		unreplicated = store.Unreplicated
	}
	mets := metrics.New(metrics.Options{
		Store:        store,
		Queues:       metrics.DefinitionQueues(store, cat, reg.Has),
		Counts:       store.CountsByName, // cairn_instances, exact across processes
		Logger:       log,
		Unreplicated: unreplicated,
		// nil when off; a nil *sdktrace.TracerProvider is off to metrics.
		TracerProvider: tp,
	})
	now := time.Now()
	for _, d := range defs {
		created, err := store.PutDefinition(ctx, d.def.Name, d.def.Hash, d.src, now)
		if err != nil {
			return fmt.Errorf("deploying %s from %s: %w", d.def.Name, d.file, err)
		}
		cat.Add(d.def)
		log.Info("workflow deployed", "name", d.def.Name, "hash", shortHash(d.def.Hash), "file", d.file, "new", created)
	}

	// The engine and the activity runtime get their own context: they stop
	// after HTTP, and finish the transitions (and, within a grace period,
	// the activities) in flight before Run returns.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	var engineDone sync.WaitGroup
	var api httpapi.Backend = store
	if cfg.engine() {
		var rt *activity.Runtime
		eng := interpreter.NewEngine(store, cat, interpreter.EngineOptions{
			Interpreter:  interpreter.New(interpreter.Options{LocalActivity: reg.Has}),
			Logger:       log,
			Observer:     mets.Engine(),
			ReclaimAfter: cfg.lease,
			Heartbeat:    cfg.heartbeat,
			// A dead engine's tasks were handed to the next reclaim:
			// this runtime looks at once.
			OnTakeover: func(_ string, _, tasks int) {
				if tasks > 0 {
					rt.ReclaimSoon()
				}
			},
		})
		// Outcomes of the tasks run here go straight to this engine. The
		// runtime shares the engine's consumer name, so the engine's
		// heartbeat covers its tasks too; its reads block no longer than a
		// heartbeat, so a takeover's tasks are reclaimed that soon.
		rt = activity.NewRuntime(activity.Direct(store, eng), cat, reg, activity.Options{
			Consumer: eng.Consumer(), Logger: log, Observer: mets.Activity(), Enqueued: store.TaskEnqueued,
			Lease: cfg.lease, Block: min(2*time.Second, cfg.heartbeat),
			HTTPConcurrency: cfg.httpConcurrency,
		})
		mets.ActivityRuntime(rt.Held)
		// Starts over HTTP run their first step on the way in, and
		// raises and controls of the instances this engine holds apply
		// at once.
		api = viaEngine{store, eng}
		engineDone.Add(2)
		go func() {
			defer engineDone.Done()
			if err := eng.Run(engineCtx); err != nil {
				failed <- fmt.Errorf("engine: %w", err)
			}
		}()
		go func() {
			defer engineDone.Done()
			if err := rt.Run(engineCtx); err != nil {
				failed <- fmt.Errorf("activity runtime: %w", err)
			}
		}()
		log.Info("engine running", "consumer", eng.Consumer(), "partitions", cfg.partitions)
	}

	var srv *http.Server
	var stopStreams context.CancelFunc
	if cfg.listen() {
		ln, err := net.Listen("tcp", cfg.addr)
		if err != nil {
			stopEngine()
			engineDone.Wait()
			return fmt.Errorf("--addr: %w", err)
		}
		var streamsCtx context.Context
		streamsCtx, stopStreams = context.WithCancel(context.WithoutCancel(ctx))
		defer stopStreams()
		var handler http.Handler
		if cfg.http() {
			handler = httpapi.New(httpapi.Config{
				Backend: api,
				Tasks:   store, // the external-worker protocol under /v1/tasks
				Catalog: cat,
				APIKeys: cfg.apiKeys,
				Logger:  log,
				UI:      web.New(web.Config{Definitions: store, Logger: log}),
				Metrics: mets,
			})
		} else {
			handler = httpapi.NewOps(httpapi.Config{Backend: store, APIKeys: cfg.apiKeys, Logger: log, Metrics: mets})
		}
		srv = &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return streamsCtx },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("http: %w", err)
			}
		}()
		if cfg.http() {
			printURLs(out, ln.Addr().String(), cfg, redactURL(redisURL)+redisNote, defs)
		} else {
			printEngine(out, ln.Addr().String(), cfg, redactURL(redisURL)+redisNote)
		}
	} else {
		printEngine(out, "", cfg, redactURL(redisURL)+redisNote)
	}

	select {
	case <-ctx.Done():
	case err = <-failed:
		log.Error("stopping", "err", err)
	}
	stop() // a second Ctrl-C now ends the process at once
	log.Info("shutting down (Ctrl-C again to force)")

	if srv != nil {
		t := time.AfterFunc(streamGrace, stopStreams)
		sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
		}
		cancel()
		t.Stop()
		log.Info("http stopped")
	}
	stopEngine()
	engineDone.Wait()
	if cfg.engine() {
		log.Info("engine stopped")
	}
	return err
}

// deployment is one workflow file ready to deploy.
type deployment struct {
	file string
	src  []byte
	def  *dsl.Workflow
}

// loadWorkflows lints and parses every workflow under dir. Any lint error,
// or two files with one workflow name, is an error listing every problem
// with its location. Warnings are logged.
func loadWorkflows(dir string, log *slog.Logger) ([]deployment, error) {
	if dir == "" {
		return nil, nil
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a folder")
		}
		return nil, fmt.Errorf("--workflows %s: %v", dir, err)
	}
	files, err := workflowFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("--workflows: %w", err)
	}
	var (
		out      []deployment
		problems strings.Builder
		byName   = map[string]string{}
	)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--workflows: %w", err)
		}
		issues := schema.Lint(f, src)
		if issues.HasErrors() {
			problems.WriteString(ensureNewline(schema.FormatText(issues, src)))
			continue
		}
		for _, i := range issues {
			log.Warn(i.String())
		}
		def, err := dsl.Parse(f, src)
		if err != nil {
			problems.WriteString(ensureNewline(err.Error()))
			continue
		}
		if other, dup := byName[def.Name]; dup {
			fmt.Fprintf(&problems, "%s: workflow %s is also defined in %s\n", f, def.Name, other)
			continue
		}
		byName[def.Name] = f
		out = append(out, deployment{file: f, src: src, def: def})
	}
	if problems.Len() > 0 {
		return nil, fmt.Errorf("workflows in %s do not lint clean; nothing was started:\n%s", dir, strings.TrimRight(problems.String(), "\n"))
	}
	if len(out) == 0 {
		log.Warn("no workflow files found", "folder", dir)
	}
	return out, nil
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// printEngine says that an engine-only process runs, and where its
// /metrics and /healthz are when it listens (addr != "").
func printEngine(w io.Writer, addr string, cfg serveConfig, redisDesc string) {
	fmt.Fprintf(w, "cairn: engine running (role engine, %d partitions, redis %s)\n", cfg.partitions, redisDesc)
	if addr == "" {
		fmt.Fprintf(w, "  metrics:    off (give --addr to serve /metrics and /healthz)\n")
		return
	}
	base := "http://" + displayAddr(addr)
	fmt.Fprintf(w, "  metrics:    %s/metrics\n", base)
	fmt.Fprintf(w, "  health:     %s/healthz\n", base)
}

// displayAddr is addr with an unspecified host shown as 127.0.0.1.
func displayAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// printURLs tells the user where to go once the API listens.
func printURLs(w io.Writer, addr string, cfg serveConfig, redisDesc string, defs []deployment) {
	base := "http://" + displayAddr(addr)
	df := base + "/runtime/webhooks/durabletask"
	fmt.Fprintf(w, "cairn: serving %s (role %s, %d partitions, redis %s)\n", base, cfg.role, cfg.partitions, redisDesc)
	key := ""
	if len(cfg.apiKeys) > 0 {
		key = ` -H "x-functions-key: $CAIRN_API_KEY"`
	}
	name := "NAME"
	if len(defs) > 0 {
		name = defs[0].def.Name
		for _, d := range defs {
			if d.def.Name == "ReserveTicket" {
				name = d.def.Name
			}
		}
	}
	if len(cfg.apiKeys) == 0 {
		fmt.Fprintf(w, "  auth:       off (no API key), so only loopback addresses are served\n")
	}
	fmt.Fprintf(w, "  progress:   %s/ui\n", base)
	fmt.Fprintf(w, "  health:     %s/healthz\n", base)
	fmt.Fprintf(w, "  workflows:  curl%s %s/v1/workflows\n", key, base)
	fmt.Fprintf(w, "  metrics:    curl%s %s/metrics\n", key, base)
	fmt.Fprintf(w, "  start one:  curl%s -X POST %s/orchestrators/%s -H 'Content-Type: application/json' -d '\"user1\"'\n", key, df, name)
	fmt.Fprintf(w, "  instances:  curl%s %s/instances\n", key, df)
	fmt.Fprintf(w, "  or:         cairn start %s --input '\"user1\"' && cairn list\n", name)
}

// viaEngine is the store as the HTTP API of a process that runs an engine
// sees it: its starts, raises and controls are the engine's. A start
// (Engine.CreateInstance) writes an instance already past its first
// step, and a raise, terminate, suspend or resume of an instance the
// engine holds (Engine.RaiseEvent, SendControl) commits its transition,
// so none goes through a work item and a round.
type viaEngine struct {
	*redisstore.Store
	eng *interpreter.Engine
}

func (b viaEngine) CreateInstance(ctx context.Context, n interpreter.NewInstance) error {
	return b.eng.CreateInstance(ctx, n)
}

func (b viaEngine) RaiseEvent(ctx context.Context, id interpreter.InstanceID, name string, data json.RawMessage, now time.Time) error {
	return b.eng.RaiseEvent(ctx, id, name, data, now)
}

func (b viaEngine) SendControl(ctx context.Context, id interpreter.InstanceID, ev interpreter.Event) error {
	return b.eng.SendControl(ctx, id, ev)
}
