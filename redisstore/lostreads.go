package redisstore

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// A read of a work or task stream whose reply was lost (the connection cut, the
// master killed mid-call, a timeout) may still have delivered entries:
// XREADGROUP made them this consumer's, and with the replication of that
// read a promoted replica has them pending for it too. No takeover
// applies (the engine is alive and heartbeating) and ">" never returns
// them again, so they would wait out the lease (30 s). So the store notes
// each work stream whose read failed, and the consumer's next read of it
// first asks for the consumer's own pending entries of that stream (ID
// "0", a non-blocking history read): one round trip more, only after a
// failure.
//
// An engine's read loop processes what it read before it reads again, so
// the pending entries it gets back are the lost ones, or ones another of
// the engine's goroutines (a reclaim, a takeover) holds at that moment:
// applied twice, those are absorbed by the exactly-once commit (revision
// check, then ErrDuplicate). The in-process activity runtime's task
// stream is read back too: the runtime keeps every task it holds until
// its outcome is recorded and skips one it holds already (Runtime.hold),
// so nothing runs twice. Workers' queues are not: an external worker
// polling under its own name may be running what it holds.

type lostKey struct{ consumer, stream string }

// lostReads holds the work streams whose last read by a consumer failed,
// each with the id after which its pending entries are still to be read
// back ("0": all of them).
type lostReads struct {
	mu sync.Mutex
	m  map[lostKey]string
}

// mark notes streams whose read by consumer failed.
func (l *lostReads) mark(consumer string, streams ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[lostKey]string{}
	}
	for _, st := range streams {
		l.m[lostKey{consumer, st}] = "0"
	}
}

// of returns those of streams whose last read by consumer failed, and
// for each the id to read back from.
func (l *lostReads) of(consumer string, streams []string) (lost, from []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) == 0 {
		return nil, nil
	}
	for _, st := range streams {
		if id, ok := l.m[lostKey{consumer, st}]; ok {
			lost, from = append(lost, st), append(from, id)
		}
	}
	return lost, from
}

// advance moves stream's read-back past id; "" ends it. A stream marked
// again meanwhile (a read failed since) starts over.
func (l *lostReads) advance(consumer, stream, was, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lostKey{consumer, stream}
	if l.m[k] != was {
		return
	}
	if id == "" {
		delete(l.m, k)
	} else {
		l.m[k] = id
	}
}

// markFailedRead notes a failed read of streams by consumer, if its
// reads are read back (see the top of this file).
func (s *Store) markFailedRead(readBack bool, consumer string, err error, streams ...string) {
	if readBack && err != nil && !errors.Is(err, redis.Nil) && !isReply(err, replyNoGroup) {
		s.lost.mark(consumer, streams...)
	}
}

// recoverLost reads consumer's own pending entries of the work streams
// whose last read failed, up to count per stream from where the last
// read-back of it ended, in one pipeline. A stream is done once a read of
// it returns fewer than count entries (all of them are back); one whose
// read fails again stays as it was. Reading on from the last id, not from
// "0", means an entry that cannot be acknowledged is not handed back at
// every read.
func (s *Store) recoverLost(ctx context.Context, group, consumer string, streams, from []string, count int) []redis.XStream {
	cmds := make([]*redis.XStreamSliceCmd, len(streams))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, st := range streams {
			cmds[i] = p.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: group, Consumer: consumer, Count: int64(count), Block: -1,
				Streams: []string{st, from[i]},
			})
		}
		return nil
	})
	var out []redis.XStream
	n := 0
	for i, c := range cmds {
		res, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			continue
		}
		got, last := 0, ""
		for _, xs := range res {
			if len(xs.Messages) > 0 {
				out = append(out, xs)
				got += len(xs.Messages)
				last = xs.Messages[len(xs.Messages)-1].ID
			}
		}
		if got < count {
			last = ""
		}
		s.lost.advance(consumer, streams[i], from[i], last)
		n += got
	}
	if n > 0 {
		s.log.Info("redisstore: took back entries whose read reply was lost", "group", group, "consumer", consumer, "entries", n)
	}
	return out
}
