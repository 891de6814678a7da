package redisstore

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// This file is the engines' membership (interpreter.Membership): each
// engine beats into the engines zset, the others watch it, and one that
// finds an engine silent takes over what it held (take_over.lua) instead
// of waiting out the lease. It also holds the partition count guard.

//go:embed scripts/take_over.lua
var takeOverSrc string

// takeOverCmd is not in allScripts: it runs seldom, and runScripts loads
// it with EVAL when the server lacks it.
var takeOverCmd = redis.NewScript(takeOverSrc)

var _ interpreter.Membership = (*Store)(nil)

// Heartbeat records that consumer is alive at beat (ZADD): one round trip.
// added reports that it was not a member.
func (s *Store) Heartbeat(ctx context.Context, consumer string, beat int64) (added bool, err error) {
	defer classify(ctx, &err)
	n, err := s.client.ZAdd(ctx, s.k.engines(), redis.Z{Score: float64(beat), Member: consumer}).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: heartbeat of %s: %w", consumer, err)
	}
	return n == 1, nil
}

// Members returns every announced engine with its last beat: one round
// trip.
func (s *Store) Members(ctx context.Context) (_ map[string]int64, err error) {
	defer classify(ctx, &err)
	zs, err := s.client.ZRangeWithScores(ctx, s.k.engines(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading the engines: %w", err)
	}
	out := make(map[string]int64, len(zs))
	for _, z := range zs {
		name, _ := z.Member.(string)
		out[name] = int64(z.Score)
	}
	return out, nil
}

// Forget removes consumer from the engines (ZREM): one round trip.
func (s *Store) Forget(ctx context.Context, consumer string) (_ bool, err error) {
	defer classify(ctx, &err)
	n, err := s.client.ZRem(ctx, s.k.engines(), consumer).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: removing engine %s: %w", consumer, err)
	}
	return n == 1, nil
}

// TakeOver moves what dead holds to taker: up to limit pending work items
// of each partition's work stream, claimed to taker whatever their idle
// time, and every leased task of each partition's local task stream,
// claimed to taker but made to look long idle (as ReleaseTasks does), so
// the next ReclaimTaskBatch of any activity runtime takes them at once.
// Where dead then holds nothing, it is removed from the group (XGROUP
// DELCONSUMER, after the claim: removing a consumer drops its pending
// entries). One take_over.lua call per stream, all in one pipeline: one
// round trip. A stream whose node fails gives its error; what the others
// moved is returned with it.
func (s *Store) TakeOver(ctx context.Context, dead, taker string, limit int) (items []interpreter.WorkItem, tasks int, done bool, err error) {
	defer classify(ctx, &err)
	if dead == taker {
		return nil, 0, false, fmt.Errorf("redisstore: engine %s cannot take over from itself", dead)
	}
	limit = cmp.Or(limit, 128)
	calls := make([]scriptCall, 0, 2*s.n)
	for p := 0; p < s.n; p++ {
		calls = append(calls,
			scriptCall{script: takeOverCmd, keys: []string{s.k.work(p)}, args: []any{groupEngine, dead, taker, limit, ""}},
			scriptCall{script: takeOverCmd, keys: []string{s.k.tasks(p, interpreter.LocalQueue)},
				args: []any{groupWorkers, dead, taker, limit, releasedIdle.Milliseconds()}})
	}
	cmds, perr := s.runScripts(ctx, calls)
	if perr != nil {
		return nil, 0, false, fmt.Errorf("redisstore: taking over from engine %s: %w", dead, perr)
	}
	done = true
	for i, c := range cmds {
		p, isWork := i/2, i%2 == 0
		reply, cerr := c.Slice()
		if cerr == nil && len(reply) == 0 {
			cerr = errors.New("empty reply")
		}
		if cerr != nil {
			err = cmp.Or(err, fmt.Errorf("redisstore: taking over from engine %s, partition %d: %w", dead, p, cerr))
			done = false
			continue
		}
		if flag, _ := reply[0].(int64); flag != 1 {
			done = false
		}
		if !isWork {
			tasks += len(reply) - 1
			continue
		}
		msgs, derr := claimedEntries(reply[1:])
		if derr != nil {
			err = cmp.Or(err, fmt.Errorf("redisstore: taking over from engine %s, partition %d: %w", dead, p, derr))
			done = false
		}
		items = s.appendWork(ctx, items, s.k.work(p), p, msgs)
	}
	return items, tasks, done, err
}

// claimedEntries decodes XCLAIM's reply as a script returns it: each
// entry is {id, {field, value, ...}}; an entry deleted from the stream
// (nil before Redis 7) is skipped.
func claimedEntries(reply []any) ([]redis.XMessage, error) {
	msgs := make([]redis.XMessage, 0, len(reply))
	for _, e := range reply {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			if e == nil {
				continue
			}
			return msgs, fmt.Errorf("unexpected entry %v in a claim's reply", e)
		}
		id, _ := pair[0].(string)
		fv, _ := pair[1].([]any)
		vals := make(map[string]any, len(fv)/2)
		for j := 0; j+1 < len(fv); j += 2 {
			k, _ := fv[j].(string)
			vals[k] = fv[j+1]
		}
		msgs = append(msgs, redis.XMessage{ID: id, Values: vals})
	}
	return msgs, nil
}

// PartitionsError is Init's refusal to serve data written with another
// partition count: instances would be looked for in the wrong partition.
type PartitionsError struct {
	Stored     int // the count the data was written with
	Configured int // Options.Partitions
}

func (e *PartitionsError) Error() string {
	return fmt.Sprintf("redisstore: the data in Redis was written with %d partitions, and this store is configured with %d: "+
		"every process sharing it must use %d (the count cannot change once data is written)", e.Stored, e.Configured, e.Stored)
}

// maxPartitions bounds the probe for data written before the count was
// recorded (cairn serve allows up to 4096).
const maxPartitions = 4096

// checkPartitions records the partition count in the meta hash when the
// data is first written (HSETNX), and refuses a store configured with
// another count (*PartitionsError). Data written before the count was
// recorded is recognised by its work streams, which every Init creates,
// one per partition: the first check counts them (one pipeline of EXISTS)
// and records what it found. One round trip when the count is recorded,
// three the first time.
func (s *Store) checkPartitions(ctx context.Context) error {
	stored, err := s.client.HGet(ctx, s.k.meta(), fPartitions).Result()
	if errors.Is(err, redis.Nil) {
		if err := s.recordPartitions(ctx); err != nil {
			return err
		}
		stored, err = s.client.HGet(ctx, s.k.meta(), fPartitions).Result()
	}
	if err != nil {
		return fmt.Errorf("redisstore: reading the partition count: %w", err)
	}
	n, err := strconv.Atoi(stored)
	if err != nil || n < 1 {
		return fmt.Errorf("redisstore: the partition count recorded in %s is %q, not a number", s.k.meta(), stored)
	}
	if n != s.n {
		return &PartitionsError{Stored: n, Configured: s.n}
	}
	return nil
}

// recordPartitions records the partition count of data written before it
// was recorded (the number of work streams), or s.n for a Redis without
// any; another process may record first, which checkPartitions reads.
func (s *Store) recordPartitions(ctx context.Context) error {
	exists := make([]*redis.IntCmd, maxPartitions)
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range exists {
			exists[i] = p.Exists(ctx, s.k.work(i))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("redisstore: looking for existing partitions: %w", err)
	}
	found := 0
	for i, c := range exists {
		if c.Val() == 1 {
			found = i + 1
		}
	}
	n := s.n
	if found > 0 {
		n = found // written before the count was recorded
	}
	if err := s.client.HSetNX(ctx, s.k.meta(), fPartitions, n).Err(); err != nil {
		return fmt.Errorf("redisstore: recording the partition count: %w", err)
	}
	return nil
}
