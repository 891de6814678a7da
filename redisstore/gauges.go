package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// This file answers the gauges a metrics scrape reads: how much work and
// how many activity tasks wait, and how much memory Redis uses. Each costs
// a bounded number of round trips whatever the number of instances: the
// streams' consumer-group summaries, not their entries.

// WorkBacklog returns the number of work items not yet taken by any engine,
// over every partition: the engine group's lag on each work stream. One
// round trip (a second, bounded, for a stream whose lag Redis cannot tell).
func (s *Store) WorkBacklog(ctx context.Context) (_ int64, err error) {
	defer classify(ctx, &err)
	infos := make([]*redis.XInfoGroupsCmd, s.n)
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range infos {
			infos[i] = p.XInfoGroups(ctx, s.k.work(i))
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return 0, fmt.Errorf("redisstore: work backlog: %w", err)
	}
	var total int64
	var unknown []int // partitions whose lag Redis cannot tell
	last := make([]string, s.n)
	for p, c := range infos {
		g, ok, err := groupOf(c, groupEngine)
		if err != nil {
			return 0, fmt.Errorf("redisstore: work backlog: %w", err)
		}
		switch {
		case !ok:
			// No group yet: nothing was ever read, and nothing written
			// that a group would not see (the group starts at 0).
		case g.Lag >= 0:
			total += g.Lag
		default:
			unknown = append(unknown, p)
			last[p] = g.LastDeliveredID
		}
	}
	if len(unknown) == 0 {
		return total, nil
	}
	// Count what lies after the last delivered entry, up to a bound: the
	// gauge is then a lower bound, never a scan of a long stream.
	const most = 10000
	ranges := make([]*redis.XMessageSliceCmd, len(unknown))
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, part := range unknown {
			ranges[i] = p.XRangeN(ctx, s.k.work(part), "("+last[part], "+", most)
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return 0, fmt.Errorf("redisstore: work backlog: %w", err)
	}
	for _, c := range ranges {
		msgs, err := c.Result()
		if err != nil {
			return 0, fmt.Errorf("redisstore: work backlog: %w", err)
		}
		total += int64(len(msgs))
	}
	return total, nil
}

// TasksWaiting returns, per queue (interpreter.LocalQueue or an activity
// name that external workers take), how many tasks no runtime or worker
// has taken yet, and when the oldest of them was queued (absent when none
// waits). Finished tasks are deleted from their stream, so what is neither
// delivered nor deleted waits: the stream's length less the group's
// pending entries. Two round trips over P streams per queue.
func (s *Store) TasksWaiting(ctx context.Context, queues []string) (_ map[string]int64, _ map[string]time.Time, err error) {
	defer classify(ctx, &err)
	type stream struct {
		queue string
		p     int
		info  *redis.XInfoGroupsCmd
		len   *redis.IntCmd
		first *redis.XMessageSliceCmd
		last  string
	}
	var streams []*stream
	for _, q := range queues {
		for p := 0; p < s.n; p++ {
			streams = append(streams, &stream{queue: queueOf(q), p: p})
		}
	}
	if _, err := s.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, st := range streams {
			key := s.k.tasks(st.p, st.queue)
			st.info = pl.XInfoGroups(ctx, key)
			st.len = pl.XLen(ctx, key)
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return nil, nil, fmt.Errorf("redisstore: tasks waiting: %w", err)
	}
	waiting := make(map[string]int64, len(queues))
	for _, st := range streams {
		waiting[st.queue] = 0 // a queue with nothing waiting shows 0, not nothing
	}
	var older []*stream
	for _, st := range streams {
		n, err := st.len.Result()
		if err != nil {
			return nil, nil, fmt.Errorf("redisstore: tasks waiting: %w", err)
		}
		if n == 0 {
			continue
		}
		g, ok, err := groupOf(st.info, groupWorkers)
		if err != nil {
			return nil, nil, fmt.Errorf("redisstore: tasks waiting: %w", err)
		}
		st.last = "-"
		if ok {
			n -= g.Pending
			st.last = "(" + g.LastDeliveredID
		}
		if n > 0 {
			waiting[st.queue] += n
			older = append(older, st)
		}
	}
	oldest := map[string]time.Time{}
	if len(older) == 0 {
		return waiting, oldest, nil
	}
	if _, err := s.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, st := range older {
			st.first = pl.XRangeN(ctx, s.k.tasks(st.p, st.queue), st.last, "+", 1)
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return nil, nil, fmt.Errorf("redisstore: tasks waiting: %w", err)
	}
	for _, st := range older {
		msgs, err := st.first.Result()
		if err != nil {
			return nil, nil, fmt.Errorf("redisstore: tasks waiting: %w", err)
		}
		if len(msgs) == 0 {
			continue
		}
		if at, ok := entryTime(msgs[0].ID); ok {
			if o, seen := oldest[st.queue]; !seen || at.Before(o) {
				oldest[st.queue] = at
			}
		}
	}
	return waiting, oldest, nil
}

// UsedMemory returns Redis's used_memory (INFO memory), summed over the
// masters of a cluster. One round trip per master.
func (s *Store) UsedMemory(ctx context.Context) (_ int64, err error) {
	defer classify(ctx, &err)
	read := func(ctx context.Context, c redis.UniversalClient) (int64, error) {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		return 0, fmt.Errorf("no used_memory in INFO memory")
	}
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		var total int64
		ch := make(chan int64, 64)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			n, err := read(ctx, c)
			if err == nil {
				ch <- n
			}
			return err
		})
		close(ch)
		for n := range ch {
			total += n
		}
		if err != nil {
			return 0, fmt.Errorf("redisstore: used memory: %w", err)
		}
		return total, nil
	}
	n, err := read(ctx, s.client)
	if err != nil {
		return 0, fmt.Errorf("redisstore: used memory: %w", err)
	}
	return n, nil
}

// TaskEnqueued returns when the task ref was queued: its stream entry's
// id holds the time Redis added it. Free: no round trip.
func (s *Store) TaskEnqueued(ref interpreter.TaskRef) (time.Time, bool) {
	return entryTime(ref.EntryID)
}

// entryTime reads the milliseconds of a stream entry id "ms-seq".
func entryTime(id string) (time.Time, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return fromMS(v), true
}

// groupOf finds group in an XINFO GROUPS reply; false when the stream or
// the group does not exist yet.
func groupOf(c *redis.XInfoGroupsCmd, group string) (redis.XInfoGroup, bool, error) {
	gs, err := c.Result()
	if err != nil {
		if isReply(err, "ERR no such key") {
			return redis.XInfoGroup{}, false, nil
		}
		return redis.XInfoGroup{}, false, err
	}
	for _, g := range gs {
		if g.Name == group {
			return g, true, nil
		}
	}
	return redis.XInfoGroup{}, false, nil
}
