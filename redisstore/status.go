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

// autoPipelined is a go-redis client with autopipelining (Client,
// ClusterClient and Ring have it).
type autoPipelined interface {
	AsyncAutoPipeline() (*redis.AutoPipeliner, error)
}

// statusArgs and stateArgs are statusFields and stateFieldNames as HMGET
// arguments, converted once: go-redis's HMGet puts each field into an
// interface, an allocation apiece per read.
var statusArgs, stateArgs = anys(statusFields), anys(stateFieldNames)

func anys(ss []string) []any {
	a := make([]any, len(ss))
	for i, f := range ss {
		a[i] = f
	}
	return a
}

// hmget is the command go-redis's HMGet(ctx, key, fields...) makes, with
// the fields given as arguments already (statusArgs, stateArgs).
func hmget(ctx context.Context, key string, fields []any) *redis.SliceCmd {
	args := make([]any, 2, 2+len(fields))
	args[0], args[1] = "hmget", key
	return redis.NewSliceCmd(ctx, append(args, fields...)...)
}

// FetchStatus reads what GET status shows, never the variables; ErrNotFound
// when there is no such instance. One round trip (one HMGET).
//
// A read that finds another in flight (GET status from many clients at
// once, the API's busiest request) is batched with it (fetchBatched); a
// read alone is sent on its own: batching it would hand its command to
// the batcher's goroutine and back for nothing (one read at a time,
// BenchmarkGetStatus/handler: ~52 µs of CPU per request on its own round
// trip, ~83 batched).
func (s *Store) FetchStatus(ctx context.Context, id interpreter.InstanceID) (_ *interpreter.InstanceStatus, err error) {
	defer classify(ctx, &err)
	company := s.statusReads.Add(1) > 1
	defer s.statusReads.Add(-1)
	var vals []any
	if c, ok := s.client.(autoPipelined); ok && company {
		vals, err = s.fetchBatched(ctx, c, id)
	} else {
		cmd := hmget(ctx, s.k.inst(s.partition(id), id), statusArgs)
		_ = s.client.Process(ctx, cmd)
		vals, err = cmd.Result()
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: fetching status: %w", err)
	}
	st, err := decodeStatus(id, vals)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("instance %s: %w", id, interpreter.ErrNotFound)
	}
	return st, nil
}

// fetchBatched is FetchStatus's HMGET for many concurrent callers: it goes
// through go-redis's autopipeliner, which sends the reads that callers
// submit while a batch is on the wire to Redis together as the next batch,
// one write and one read on one connection. Each caller otherwise pays a
// round trip of its own: two system calls in the client and as many in
// Redis, most of both sides' CPU per read (docs/benchmarks.md, "Figures
// behind the code").
//
// It returns by ctx's deadline whatever Redis does (the read itself
// finishes in the background and is dropped).
func (s *Store) fetchBatched(ctx context.Context, c autoPipelined, id interpreter.InstanceID) ([]any, error) {
	ap, err := c.AsyncAutoPipeline() // one per client, made on first use
	if err != nil {
		return nil, err
	}
	cmd := hmget(ctx, s.k.inst(s.partition(id), id), statusArgs)
	// WaitContext, not Wait: the autopipeliner does not end a batch at a
	// caller's deadline, so a stalled Redis would hold the caller until
	// the batch's own ReadTimeout. After a context error cmd is not read:
	// its batch may still be filling it in.
	if err := ap.Submit(ctx, cmd).WaitContext(ctx); err != nil {
		return nil, err
	}
	return cmd.Val(), nil
}

// parseMeta reads the meta field as json.Unmarshal would, for the JSON
// json.Marshal writes of it: no spaces, keys known, strings of printable
// ASCII without escapes. It reports false on anything else (then m is
// garbage), and the caller leaves the field to encoding/json: a key added
// to meta or Pending, or a name with an accent, costs speed, never
// correctness. TestParseMetaIsUnmarshal holds the two to the same result
// and to knowing every key.
func parseMeta(s string, m *meta) bool {
	p := jsonScan{s: s}
	return p.object(func(key string) bool {
		switch key {
		case "n":
			return p.str(&m.Name)
		case "d":
			return p.str(&m.Def)
		case "c":
			return p.int64(&m.Created)
		case "u":
			return p.int64(&m.Updated)
		case "p":
			m.Pending = new(interpreter.Pending)
			return p.pending(m.Pending)
		}
		return false
	}) && p.i == len(s)
}

func (p *jsonScan) pending(w *interpreter.Pending) bool {
	return p.object(func(key string) bool {
		switch key {
		case "kind":
			return p.str((*string)(&w.Kind))
		case "step":
			return p.str((*string)(&w.StepID))
		case "activity":
			return p.str(&w.Activity)
		case "task":
			return p.str(&w.TaskID)
		case "queue":
			return p.str(&w.Queue)
		case "attempt":
			return p.int(&w.Attempt)
		case "first":
			return p.time(&w.FirstAttempt)
		case "event":
			return p.str(&w.Event)
		case "events":
			return p.strs(&w.Events)
		case "all":
			return p.bool(&w.All)
		case "got":
			return p.strs(&w.Got)
		case "timer":
			return p.str(&w.TimerID)
		case "until":
			w.Deadline = new(time.Time)
			return p.time(w.Deadline)
		case "branches":
			return p.int(&w.Branches)
		case "done":
			return p.int(&w.Done)
		case "child":
			return p.str((*string)(&w.Child))
		case "watch":
			return p.str(&w.WatchID)
		case "watchDue":
			w.WatchDue = new(time.Time)
			return p.time(w.WatchDue)
		case "started":
			return p.bool(&w.Started)
		case "startBy":
			w.StartBy = new(time.Time)
			return p.time(w.StartBy)
		case "overdue":
			w.Overdue = new(time.Time)
			return p.time(w.Overdue)
		}
		return false
	})
}

// jsonScan reads the narrow JSON parseMeta accepts from s at i.
type jsonScan struct {
	s string
	i int
}

func (p *jsonScan) next(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads {"key":value,...}, value by value(key).
func (p *jsonScan) object(value func(key string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		var key string
		if !p.str(&key) || !p.next(':') || !value(key) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes: what needs
// unescaping or a UTF-8 check is left to encoding/json.
func (p *jsonScan) str(dst *string) bool {
	if !p.next('"') {
		return false
	}
	for j := p.i; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			*dst = p.s[p.i:j]
			p.i = j + 1
			return true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		}
	}
	return false
}

func (p *jsonScan) strs(dst *[]string) bool {
	if !p.next('[') {
		return false
	}
	*dst = []string{} // as json.Unmarshal: [] is empty, not nil
	if p.next(']') {
		return true
	}
	for {
		var v string
		if !p.str(&v) {
			return false
		}
		*dst = append(*dst, v)
		if p.next(']') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// int64 reads an integer: -?(0|[1-9][0-9]*), in range.
func (p *jsonScan) int64(dst *int64) bool {
	j := p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	k := j
	for k < len(p.s) && p.s[k] >= '0' && p.s[k] <= '9' {
		k++
	}
	if k == j || (p.s[j] == '0' && k > j+1) || (k < len(p.s) && (p.s[k] == '.' || p.s[k] == 'e' || p.s[k] == 'E')) {
		return false // none, a leading zero (not JSON), or not an integer
	}
	v, err := strconv.ParseInt(p.s[p.i:k], 10, 64)
	if err != nil {
		return false
	}
	*dst, p.i = v, k
	return true
}

func (p *jsonScan) int(dst *int) bool {
	var v int64
	if !p.int64(&v) || int64(int(v)) != v {
		return false
	}
	*dst = int(v)
	return true
}

func (p *jsonScan) bool(dst *bool) bool {
	switch {
	case strings.HasPrefix(p.s[p.i:], "true"):
		*dst, p.i = true, p.i+4
	case strings.HasPrefix(p.s[p.i:], "false"):
		*dst, p.i = false, p.i+5
	default:
		return false
	}
	return true
}

// time reads a time as time.Time's UnmarshalJSON does.
func (p *jsonScan) time(dst *time.Time) bool {
	start := p.i
	var v string
	return p.str(&v) && dst.UnmarshalJSON([]byte(p.s[start:p.i])) == nil
}
