package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The physical ceiling: redis-benchmark on the same server for the
// commands on cairn's hot path.

// ceilingCommands name the benchmarks; their arguments are filled in by
// prepareCeiling.
var ceilingCommands = []string{"EVALSHA", "XADD", "XREADGROUP", "HGETALL"}

// prepareCeiling flushes the server and creates what the commands read:
// a hash shaped like an instance (6 fields, about 600 bytes), a small
// script (one HGET, as the commit's revision check) and a stream with a
// group for XREADGROUP (filled by the XADD benchmark, which runs first).
func prepareCeiling(ctx context.Context, c *redis.Client) (map[string][]string, error) {
	if err := c.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	if err := c.HSet(ctx, "bench:inst", "st", "Running", "rev", "3",
		"meta", `{"name":"ReserveTicket","def":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","created":1767225600000,"updated":1767225600123,"pending":{"kind":"event","step":"confirmation","event":"BookingConfirmed","timer":"t2"}}`,
		"rt", `{"vars":{"discount":20},"cursor":[{"b":"","i":2}],"seq":2}`,
		"in", `"user1"`, "cs", `{"discount":20,"discountTimeout":60,"bookingUrl":"https://example.com/book/user1"}`).Err(); err != nil {
		return nil, err
	}
	sha, err := c.ScriptLoad(ctx, "return redis.call('HGET', KEYS[1], 'rev')").Result()
	if err != nil {
		return nil, err
	}
	if err := c.XGroupCreateMkStream(ctx, "bench:work", "engine", "0").Err(); err != nil {
		return nil, err
	}
	return map[string][]string{
		"EVALSHA":    {"EVALSHA", sha, "1", "bench:inst"},
		"XADD":       {"XADD", "bench:work", "*", "i", "order-00000042-5f2c", "e", `{"k":"EventRaised","t":"2026-01-01T00:00:00Z","name":"BookingConfirmed","data":true}`},
		"XREADGROUP": {"XREADGROUP", "GROUP", "engine", "c1", "COUNT", "1", "STREAMS", "bench:work", ">"},
		"HGETALL":    {"HGETALL", "bench:inst"},
	}, nil
}

// redisBenchmark runs one command n times from 50 clients with the given
// pipeline depth and returns requests per second.
func redisBenchmark(ctx context.Context, bin, addr string, n, pipeline int, args []string) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	full := append([]string{"-h", host, "-p", port, "-c", "50", "-n", strconv.Itoa(n),
		"-P", strconv.Itoa(pipeline), "--csv"}, args...)
	out, err := exec.CommandContext(ctx, bin, full...).Output()
	if err != nil {
		return 0, fmt.Errorf("%s %v: %w", bin, args[0], err)
	}
	// The test name is not escaped (the XADD payload holds quotes), but the
	// seven figures after it are plain: rps is the seventh from the end.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Split(lines[len(lines)-1], ",")
	if len(lines) < 2 || len(f) < 8 {
		return 0, fmt.Errorf("redis-benchmark output %q", out)
	}
	return strconv.ParseFloat(strings.Trim(f[len(f)-7], `"`), 64)
}

// ceilingFor maps a round trip kind (as the counter names it) to the
// benchmark command that stands for it.
func ceilingFor(kind string) string {
	k := strings.TrimPrefix(kind, "pipeline:")
	switch k {
	case "xreadgroup", "xautoclaim":
		return "XREADGROUP"
	case "hmget", "hgetall", "hget", "exists":
		return "HGETALL"
	case "xadd", "xack", "xdel":
		return "XADD"
	default:
		return "EVALSHA"
	}
}

// ceilingRate is how many instances per second Redis could serve if each
// round trip an instance needs cost what its benchmark command costs:
// 1 / Σ trips_k / rate_k.
func ceilingRate(kinds map[string]float64, rates map[string]float64) float64 {
	var sec float64
	for k, n := range kinds {
		r := rates[ceilingFor(k)]
		if r <= 0 {
			return 0
		}
		sec += n / r
	}
	if sec == 0 {
		return 0
	}
	return 1 / sec
}
