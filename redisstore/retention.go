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

// Retention bounds the finished instances (Completed, Failed, Terminated)
// kept in Redis, with their history. The zero value keeps them until a
// client purges them (DELETE .../instances), as Durable Functions does.
//
// Retention applies to instances that finish while it is set: a commit
// notes the finished time in the partition's finished zset, and
// ExpireFinished, which the engine calls every few seconds, deletes what
// the limits no longer keep. Instances that finished before retention was
// turned on are not noted; purge them once by time range.
type Retention struct {
	// MaxAge deletes a finished instance this long after it finished; 0
	// is no age limit. KeepNone is the smallest age.
	MaxAge time.Duration
	// MaxCount keeps at most about this many finished instances, the most
	// recently finished; 0 is no count limit. It is enforced per
	// partition (MaxCount / partitions each, rounded up), so the total can
	// run a little over when instances are unevenly spread.
	MaxCount int
}

// KeepNone is the retention that deletes every instance at the first
// sweep after it finished (within a few seconds): clients must take the
// output from start-and-wait or the status stream.
var KeepNone = Retention{MaxAge: time.Millisecond}

func (r Retention) enabled() bool { return r.MaxAge > 0 || r.MaxCount > 0 }

// String is the inverse of ParseRetention.
func (r Retention) String() string {
	var parts []string
	switch {
	case r == KeepNone:
		return "none"
	case r.MaxAge > 0 && r.MaxAge%(24*time.Hour) == 0:
		parts = append(parts, strconv.FormatInt(int64(r.MaxAge/(24*time.Hour)), 10)+"d")
	case r.MaxAge > 0:
		parts = append(parts, r.MaxAge.String())
	}
	if r.MaxCount > 0 {
		parts = append(parts, strconv.Itoa(r.MaxCount))
	}
	if len(parts) == 0 {
		return "forever"
	}
	return strings.Join(parts, ",")
}

// ParseRetention reads a retention setting: "forever" (the zero
// Retention; cairn serve's default is 30 days),
// "none", an age ("72h", "30m", "7d"), a count of finished instances
// ("100000"), or an age and a count separated by a comma ("7d,100000":
// whichever deletes first).
func ParseRetention(s string) (Retention, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "forever":
		return Retention{}, nil
	case "none":
		return KeepNone, nil
	}
	var r Retention
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return r, fmt.Errorf("retention %q: want an age, a count, or age,count", s)
	}
	for _, part := range parts {
		part = strings.TrimSpace(part)
		if n, err := strconv.Atoi(part); err == nil {
			if n <= 0 || r.MaxCount != 0 {
				return r, fmt.Errorf("retention %q: the count must be one number above 0 (use \"none\" to keep nothing)", s)
			}
			r.MaxCount = n
			continue
		}
		d, err := parseAge(part)
		if err != nil || d <= 0 || r.MaxAge != 0 {
			return r, fmt.Errorf("retention %q: %q is neither a count nor an age above 0 like 72h or 7d", s, part)
		}
		r.MaxAge = d
	}
	return r, nil
}

// parseAge is time.ParseDuration plus whole days ("7d").
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100000 {
			return 0, errors.New("bad number of days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// expireBatch is how many finished instances one ExpireFinished round
// looks at per partition.
const expireBatch = 256

// ExpireFinished deletes the partition's finished instances that the
// retention setting no longer keeps (finished before now - MaxAge, or the
// oldest beyond the partition's share of MaxCount), at most a few batches
// per call, and returns how many went. Without retention it does nothing
// and costs no round trip; otherwise one round trip when nothing is due,
// two per batch when something is.
func (s *Store) ExpireFinished(ctx context.Context, partition int, now time.Time) (_ int, err error) {
	defer classify(ctx, &err)
	if !s.retain.enabled() {
		return 0, nil
	}
	perPart := 0
	if s.retain.MaxCount > 0 {
		perPart = (s.retain.MaxCount + s.n - 1) / s.n
	}
	fin := s.k.finished(partition)
	total := 0
	for round := 0; round < 4; round++ {
		var oldest *redis.ZSliceCmd
		var card *redis.IntCmd
		if _, err := s.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
			oldest = pl.ZRangeWithScores(ctx, fin, 0, expireBatch-1)
			card = pl.ZCard(ctx, fin)
			return nil
		}); err != nil {
			return total, fmt.Errorf("redisstore: expiring finished instances: %w", err)
		}
		excess := 0
		if perPart > 0 {
			excess = int(card.Val()) - perPart
		}
		keys := []string{fin, s.k.index(partition), s.k.counts(partition)}
		args := append([]any{len(terminalStatuses)}, terminalStatuses...)
		for i, z := range oldest.Val() {
			id, _ := z.Member.(string)
			due := i < excess || (s.retain.MaxAge > 0 && int64(z.Score) <= ms(now.Add(-s.retain.MaxAge)))
			if !due {
				break // oldest first: nothing after is due either
			}
			iid := interpreter.InstanceID(id)
			keys = append(keys, s.k.inst(partition, iid), s.k.hist(partition, iid))
			args = append(args, id, int64(z.Score))
		}
		picked := (len(keys) - 3) / 2
		if picked == 0 {
			return total, nil
		}
		n, err := s.runScript(ctx, expireFinishedCmd, keys, args...).Int()
		if err != nil {
			return total, fmt.Errorf("redisstore: expiring finished instances: %w", err)
		}
		total += n
		if picked < expireBatch {
			return total, nil
		}
	}
	return total, nil
}
