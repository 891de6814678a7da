package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// Instances per workflow and runtime status. Each partition's counts hash
// is kept by the scripts that change an instance's runtime status, in the
// same script as the change (create_instance, commit_transition,
// purge_instance, purge_many, expire_finished), so it is exact whatever
// number of processes share the Redis, adds no round trip and lives on the
// partition's slot. Reading sums the partitions' hashes: one pipeline of
// P HGETALLs, O(partitions × workflows), never a walk of the instances.
//
// Data written by a version without counts has none: Init counts every
// partition whose hash lacks the marker, once (recountBatch).

// recountTries bounds how often Init reads a partition's index again when
// instances come and go while it counts; a partition still not counted
// (a busy one) is counted at the next start.
const recountTries = 5

// CountInstances returns the instances per workflow and runtime status:
// workflow name → status → count. A status whose count fell back to zero
// stays, with 0, so a gauge of it goes to 0 rather than vanishing. One
// round trip.
func (s *Store) CountInstances(ctx context.Context) (_ map[string]map[interpreter.RuntimeStatus]int64, err error) {
	defer classify(ctx, &err)
	cmds := make([]*redis.MapStringStringCmd, s.n)
	if _, err := s.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for p := range cmds {
			cmds[p] = pl.HGetAll(ctx, s.k.counts(p))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("redisstore: counting instances: %w", err)
	}
	out := map[string]map[interpreter.RuntimeStatus]int64{}
	for p, c := range cmds {
		for f, v := range c.Val() {
			i := strings.LastIndexByte(f, '\n')
			if i < 0 {
				continue // the marker
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("redisstore: counting instances: partition %d: field %q holds %q, not a number", p, f, v)
			}
			wf, st := f[:i], interpreter.RuntimeStatus(f[i+1:])
			if out[wf] == nil {
				out[wf] = map[interpreter.RuntimeStatus]int64{}
			}
			out[wf][st] += n
		}
	}
	return out, nil
}

// CountsByName is CountInstances with the statuses as strings, the shape
// metrics.Options.Counts takes.
func (s *Store) CountsByName(ctx context.Context) (map[string]map[string]int64, error) {
	counts, err := s.CountInstances(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]int64, len(counts))
	for wf, by := range counts {
		m := make(map[string]int64, len(by))
		for st, n := range by {
			m[string(st)] = n
		}
		out[wf] = m
	}
	return out, nil
}

// recountMissing counts the partitions whose counts hash has no marker
// (data written before counts existed, or a Redis started empty): one
// round trip to find them, then per such partition one to read its index
// and one to count. Engines starting together are safe: the count is one
// script that checks the marker and the index first, and a partition is
// counted once.
func (s *Store) recountMissing(ctx context.Context, now time.Time) error {
	marks := make([]*redis.BoolCmd, s.n)
	if _, err := s.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for p := range marks {
			marks[p] = pl.HExists(ctx, s.k.counts(p), countsMarker)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("redisstore: looking for the instance counts: %w", err)
	}
	for p, m := range marks {
		if m.Val() {
			continue
		}
		n, err := s.recountPartition(ctx, p, now)
		if errors.Is(err, errIndexMoving) {
			s.log.Warn("instance counts of a partition not rebuilt; the next start tries again", "partition", p, "err", err)
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			s.log.Info("counted the instances of a partition written before counts existed", "partition", p, "instances", n)
		}
	}
	return nil
}

// recountPartition counts partition p's instances into its counts hash
// unless it is counted already, and returns how many it counted (0 when
// another process did). It reads the whole index of the partition: this
// runs once per partition in a store's life.
func (s *Store) recountPartition(ctx context.Context, p int, now time.Time) (int, error) {
	for try := 0; try < recountTries; try++ {
		ids, err := s.client.ZRange(ctx, s.k.index(p), 0, -1).Result()
		if err != nil {
			return 0, fmt.Errorf("redisstore: counting the instances of partition %d: %w", p, err)
		}
		keys := make([]string, 2, 2+len(ids))
		keys[0], keys[1] = s.k.counts(p), s.k.index(p)
		args := make([]any, 0, 2+len(ids))
		args = append(args, countsMarker, ms(now))
		for _, id := range ids {
			keys = append(keys, s.k.inst(p, interpreter.InstanceID(id)))
			args = append(args, id)
		}
		n, err := s.runScript(ctx, recountInstancesCmd, keys, args...).Int()
		if err != nil {
			return 0, fmt.Errorf("redisstore: counting the instances of partition %d: %w", p, err)
		}
		switch n {
		case -1:
			return 0, nil
		case -2:
			continue // the index moved meanwhile
		default:
			return n, nil
		}
	}
	return 0, fmt.Errorf("redisstore: counting the instances of partition %d: %w (%d tries)", p, errIndexMoving, recountTries)
}

// errIndexMoving: instances kept coming and going while a partition was
// counted.
var errIndexMoving = errors.New("its index kept changing while it was read")
