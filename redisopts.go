package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisOptions reads --redis: one redis:// or rediss:// URL (a bare
// host:port means redis://host:port), or a comma list of them naming the
// nodes of a Redis Cluster (credentials and TLS from the first).
func redisOptions(raw string) (*redis.UniversalOptions, error) {
	var urls []string
	for _, u := range splitList(raw) {
		if !strings.Contains(u, "://") {
			u = "redis://" + u
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		return nil, errors.New("--redis is empty")
	}
	var opts []*redis.Options
	for _, u := range urls {
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("--redis %s: %v (want redis://[user:password@]host:port[/db] or rediss://...)", redactURL(u), err)
		}
		opts = append(opts, o)
	}
	o := opts[0]
	uo := &redis.UniversalOptions{
		Addrs:     []string{o.Addr},
		DB:        o.DB,
		Username:  o.Username,
		Password:  o.Password,
		TLSConfig: o.TLSConfig,
		// RESP2: under RESP3 go-redis peeks every connection for push
		// notifications before each reply (an eighth of GET status's
		// CPU), and cairn needs none: its pub/sub gets a connection of
		// its own, which RESP2 pub/sub requires anyway.
		Protocol: 2,
		// No CLIENT SETINFO round trips on every new connection.
		DisableIdentity: true,
		// The client bounds pool waits, dials, writes and reads by the
		// context's deadline: the HTTP API bounds a store call with that
		// deadline alone (httpapi.Backend's contract).
		ContextTimeoutEnabled: true,
		// Room for one command per HTTP connection of a busy API (64
		// and more) besides the engine's and the activity runtime's
		// blocking reads; the default, 10 per CPU, made requests queue
		// for a connection on small machines.
		PoolSize: 128,
	}
	if len(opts) > 1 {
		// A cluster client with go-redis's routing: reads stay on the
		// masters (no ReadOnly, RouteByLatency or RouteRandomly: a
		// replica lags, so a status read right after a 202 could miss
		// the write) and MaxRedirects keeps its 3 retries, which reach a
		// promoted replica once the slot map is fresh. redisstore.New
		// refreshes it on the errors a failover causes (failover.go;
		// go-redis alone waits up to a minute): make the store right
		// after the client. docs/scaling.md has the measurements.
		uo.IsClusterMode = true
		for _, x := range opts[1:] {
			uo.Addrs = append(uo.Addrs, x.Addr)
		}
		if o.DB != 0 {
			return nil, errors.New("--redis: Redis Cluster has only database 0")
		}
	}
	return uo, nil
}

// redactURL hides a password in a Redis URL.
func redactURL(raw string) string {
	var out []string
	for _, s := range strings.Split(raw, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			s = u.Redacted()
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// redisLogger sends go-redis's own messages (pool dial retries) to the
// debug log: the failures that matter surface as errors of the calls.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}
