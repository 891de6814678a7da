package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// NoHistory as Options.HistoryMax keeps no instance history at all.
const NoHistory = -1

// Options configures a Store. The zero value is the default.
type Options struct {
	// Partitions is the fixed number of partitions P (default 16). Every
	// process sharing a Redis must use the same value.
	Partitions int
	// Prefix starts every key (default "cairn").
	Prefix string
	// HistoryMax bounds the history kept per instance, in transitions (each
	// with its lines): the oldest go first. 0 means the default, 100;
	// NoHistory keeps none.
	HistoryMax int
	// Retention bounds how many finished instances stay in Redis, and for
	// how long; the zero value keeps them until a client purges them.
	Retention Retention
	// Logger receives reports of corrupt entries dropped from the streams
	// (default slog.Default()).
	Logger *slog.Logger
	// Durability is what an acknowledged write waits for (durability.go;
	// default DurabilityNone).
	Durability Durability
	// ReplicaTimeout bounds the wait for a replica under
	// DurabilityReplica (default 1 s).
	ReplicaTimeout time.Duration
}

// Store keeps workflow instances, their work, timers, activity tasks and
// definitions in Redis. It implements interpreter.Store for the engine and
// serves the HTTP API and the activity runtime. It is safe for concurrent
// use.
//
// Its calls return by their context's deadline when the client has
// ContextTimeoutEnabled (`cairn serve`'s has): go-redis then bounds the
// wait for a pooled connection, the dial and each socket write and read
// by it; without, only by the client's own Dial/Read/WriteTimeout. A
// Redis out of reach or unable to serve for now answers an error that
// errors.Is interpreter.ErrUnavailable (classify).
type Store struct {
	client  redis.UniversalClient
	k       keys
	n       int
	histMax int
	retain  Retention
	log     *slog.Logger
	// perStream: the client is a cluster client, where one XREADGROUP may
	// not name streams of several slots; reads go stream by stream.
	perStream bool
	// failover refreshes a cluster client's slot map when a node fails
	// (failover.go); nil on other clients.
	failover *failover
	// lost: the work streams whose last read failed (lostreads.go).
	lost lostReads
	// statusReads counts the FetchStatus calls in flight: a read that
	// finds company is batched.
	statusReads atomic.Int64
	// scriptCalls counts the runScript calls in flight: a call that finds
	// company is batched.
	scriptCalls atomic.Int64
	// latest caches LatestDefinition's answers (latest.go).
	latest latestCache
	// durability is Options.Durability; repl, set under DurabilityReplica,
	// follows the replicas (durability.go).
	durability Durability
	repl       *replication
	// batchers joins concurrent replicated writes per master address
	// (durability.go).
	batchers sync.Map
	// addr is a single Redis's address, for logs (empty on a cluster).
	addr string
}

// New returns a Store over client. Call Init once at start-up to create
// the consumer groups and load the scripts (both also happen lazily).
//
// On a *redis.ClusterClient it installs hooks that refresh the slot map as
// soon as a call fails in a way a failover would explain (failover.go), so
// the store follows a promoted replica within a second or so instead of
// go-redis's periodic minute; make the client just before, so that every
// node client gets them.
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.Partitions <= 0 {
		opts.Partitions = 16
	}
	switch {
	case opts.HistoryMax == 0:
		opts.HistoryMax = 100
	case opts.HistoryMax < 0:
		opts.HistoryMax = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	_, cluster := client.(*redis.ClusterClient)
	s := &Store{
		client: client, k: newKeys(opts.Prefix).forPartitions(opts.Partitions), n: opts.Partitions,
		histMax: opts.HistoryMax, retain: opts.Retention, log: opts.Logger, perStream: cluster,
		failover: followFailovers(client), durability: opts.Durability,
	}
	if c, ok := client.(*redis.Client); ok {
		s.addr = c.Options().Addr
	}
	if opts.Durability == DurabilityReplica {
		if opts.ReplicaTimeout <= 0 {
			opts.ReplicaTimeout = defaultReplicaTimeout
		}
		log := opts.Logger
		s.repl = &replication{timeout: opts.ReplicaTimeout, log: func(addr string, err error) {
			log.Warn("redis: writes acknowledged without a replica until one is back", "master", addr, "err", err)
		}}
	}
	return s
}

// Init creates the engine consumer group of every partition's work stream,
// loads the scripts into the server (on every node of a cluster) and
// counts the instances of every partition not counted yet (counts.go).
func (s *Store) Init(ctx context.Context) (err error) {
	defer classify(ctx, &err)
	// Data written with another partition count is refused
	// (*PartitionsError): its instances would be looked for in the wrong
	// partitions. The first Init records the count.
	if err := s.checkPartitions(ctx); err != nil {
		return err
	}
	if s.durability == DurabilityFsync {
		if err := s.checkFsync(ctx); err != nil {
			return err
		}
	}
	ws := make([]string, s.n)
	for p := range ws {
		ws[p] = s.k.work(p)
	}
	if err := s.createGroups(ctx, groupEngine, ws); err != nil {
		return err
	}
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("redisstore: loading scripts: %w", err)
		}
	}
	return s.recountMissing(ctx, time.Now())
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) (err error) {
	defer classify(ctx, &err)
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Partitions is the fixed number of partitions P.
func (s *Store) Partitions() int { return s.n }

// partition is the partition of an instance.
func (s *Store) partition(id interpreter.InstanceID) int { return partitionOf(id, s.n) }

// PartitionOf is the partition that holds instance id.
func (s *Store) PartitionOf(id interpreter.InstanceID) int { return s.partition(id) }

// createGroups creates a consumer group reading every stream from its
// start (so nothing added before is missed), creating the streams if need
// be. Existing groups are left alone. One round trip.
func (s *Store) createGroups(ctx context.Context, group string, streams []string) error {
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, st := range streams {
			p.XGroupCreateMkStream(ctx, st, group, "0")
		}
		return nil
	})
	if err != nil && !isRedisError(err) {
		return fmt.Errorf("redisstore: creating consumer groups: %w", err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !isReply(err, replyBusyGroup) {
			return fmt.Errorf("redisstore: creating consumer groups: %w", err)
		}
	}
	return nil
}

// readGroup reads new entries of the streams for a consumer of group,
// COUNT per stream, waiting up to block (0 = do not wait) for the first.
// A missing group (new queue, or a Redis that lost its data) is created and
// the read retried once.
//
// readBack: the consumer processes what it read before it reads again
// (an engine's read loop, the in-process activity runtime), so a failed
// read is followed by a read-back of its own pending entries
// (lostreads.go).
func (s *Store) readGroup(ctx context.Context, group, consumer string, streams []string, count int, block time.Duration, readBack bool) ([]redis.XStream, error) {
	if lost, from := s.lost.of(consumer, streams); len(lost) > 0 && readBack {
		if res := s.recoverLost(ctx, group, consumer, lost, from, count); len(res) > 0 {
			return res, nil
		}
	}
	res, err := s.readGroupOnce(ctx, group, consumer, streams, count, block, readBack)
	if isReply(err, replyNoGroup) {
		if err := s.createGroups(ctx, group, streams); err != nil {
			return nil, err
		}
		res, err = s.readGroupOnce(ctx, group, consumer, streams, count, block, readBack)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading %s streams: %w", group, err)
	}
	return res, nil
}

func (s *Store) readGroupOnce(ctx context.Context, group, consumer string, streams []string, count int, block time.Duration, readBack bool) ([]redis.XStream, error) {
	if s.perStream && len(streams) > 1 {
		return s.pollGroup(ctx, group, consumer, streams, count, block, readBack)
	}
	args := &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Count: int64(count), Block: -1,
		Streams: make([]string, 0, 2*len(streams)),
	}
	if block > 0 {
		args.Block = block
	}
	args.Streams = append(args.Streams, streams...)
	for range streams {
		args.Streams = append(args.Streams, ">")
	}
	res, err := s.client.XReadGroup(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	s.markFailedRead(readBack, consumer, err, streams...)
	return res, err
}

// pollGroup is readGroupOnce for a cluster: a pipeline of non-blocking
// reads, one per stream (one round trip per node), repeated until
// something arrives or block has passed.
//
// A node that fails fails only its streams' reads: what the others
// delivered is returned all the same, as XREADGROUP has already made it
// this consumer's (dropped here, it would wait out a lease). The error is
// returned only when nothing came, so a lost master stalls its own
// partitions, not the rest.
func (s *Store) pollGroup(ctx context.Context, group, consumer string, streams []string, count int, block time.Duration, readBack bool) ([]redis.XStream, error) {
	deadline := time.Now().Add(block)
	for {
		cmds := make([]*redis.XStreamSliceCmd, len(streams))
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, st := range streams {
				cmds[i] = p.XReadGroup(ctx, &redis.XReadGroupArgs{
					Group: group, Consumer: consumer, Count: int64(count), Block: -1,
					Streams: []string{st, ">"},
				})
			}
			return nil
		})
		var out []redis.XStream
		var failed error
		var missing []string // streams without the group
		for i, c := range cmds {
			res, err := c.Result()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				s.markFailedRead(readBack, consumer, err, streams[i])
				if isReply(err, replyNoGroup) {
					missing = append(missing, streams[i])
				}
				if failed == nil || isReply(err, replyNoGroup) {
					failed = err // readGroup creates a missing group
				}
			default:
				out = append(out, res...)
			}
		}
		if len(out) > 0 {
			if len(missing) > 0 {
				// As readGroup would have: the next read finds them.
				_ = s.createGroups(ctx, group, missing)
			}
			return out, nil
		}
		if failed != nil {
			return nil, failed
		}
		wait := min(time.Until(deadline), 50*time.Millisecond)
		if wait <= 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// drop acknowledges and deletes entries that cannot be decoded, so they
// do not come back forever. One round trip.
func (s *Store) drop(ctx context.Context, group string, entries map[string][]string, cause error) {
	s.log.Error("redisstore: dropping corrupt stream entries", "group", group, "entries", entries, "err", cause)
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for st, ids := range entries {
			p.XAck(ctx, st, group, ids...)
			p.XDel(ctx, st, ids...)
		}
		return nil
	})
}
