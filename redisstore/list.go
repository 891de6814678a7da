package redisstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// Listing and bulk purge walk the partitions' index zsets together, in the
// global order (created ms, id). A cursor is the last (score, id) seen;
// since the order is total, the same cursor serves every partition.

const (
	defaultTop = 100
	// listRounds bounds the index pages one ListInstances call scans when a
	// filter rejects most candidates; it then returns a short page and a
	// token to go on.
	listRounds = 8
	// purgeBatch is the index page per partition of PurgeMany.
	purgeBatch = 256
	// minScore is below any created time.
	minScore = -(1 << 53)
)

type cursor struct {
	score int64
	id    interpreter.InstanceID // "" = before every id of score
}

func (c cursor) less(d cursor) bool {
	return c.score < d.score || c.score == d.score && c.id < d.id
}

type entry struct {
	cursor
	p int
}

// token encodes a cursor as an opaque continuation token.
func (c cursor) token() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.score, 10) + ":" + string(c.id)))
}

func parseToken(t string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err == nil {
		s, id, ok := strings.Cut(string(b), ":")
		if ok && id != "" {
			score, err := strconv.ParseInt(s, 10, 64)
			if err == nil {
				return cursor{score, interpreter.InstanceID(id)}, nil
			}
		}
	}
	return cursor{}, fmt.Errorf("redisstore: malformed continuation token %q: %w", t, interpreter.ErrInvalid)
}

// scanIndex reads up to fetch index entries after cur (score at most
// maxScore, "" = unbounded) from every partition in one round trip. It returns the
// entries that are certainly the next ones in global order, sorted, and
// whether more may follow them.
func (s *Store) scanIndex(ctx context.Context, cur cursor, maxScore string, fetch int) ([]entry, bool, error) {
	calls := make([]scriptCall, s.n)
	for p := range calls {
		calls[p] = scriptCall{script: pageIndexCmd, keys: []string{s.k.index(p)}, args: []any{cur.score, string(cur.id), maxScore, fetch}}
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, false, fmt.Errorf("redisstore: reading index: %w", err)
	}
	var all []entry
	var bound *cursor // the smallest last entry of a full page
	for p, c := range cmds {
		vals, err := c.StringSlice()
		if err != nil {
			return nil, false, fmt.Errorf("redisstore: reading index: %w", err)
		}
		for i := 0; i+1 < len(vals); i += 2 {
			f, err := strconv.ParseFloat(vals[i+1], 64)
			if err != nil {
				return nil, false, fmt.Errorf("redisstore: reading index: bad score %q", vals[i+1])
			}
			all = append(all, entry{cursor{int64(f), interpreter.InstanceID(vals[i])}, p})
		}
		if n := len(vals) / 2; n == fetch {
			last := all[len(all)-1].cursor
			if bound == nil || last.less(*bound) {
				bound = &last
			}
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.score, b.score), strings.Compare(string(a.id), string(b.id)))
	})
	if bound == nil {
		return all, false, nil
	}
	// Past the bound, a full partition may hold entries not read yet.
	n, _ := slices.BinarySearchFunc(all, *bound, func(e entry, c cursor) int {
		if e.cursor == c {
			return 0
		}
		if e.less(c) {
			return -1
		}
		return 1
	})
	return all[:n+1], true, nil
}

// bounds turns a query's time range into a first cursor and a max score.
func bounds(from, to int64, hasTo bool) (cursor, string) {
	maxScore := ""
	if hasTo {
		maxScore = strconv.FormatInt(to, 10)
	}
	return cursor{score: from}, maxScore
}

// ListInstances returns one page of instances in (created time, id) order
// and the token of the next page ("" after the last). It reads the index
// page by page, never all of it: one round trip for the index and one for
// the candidates' statuses; with filters that reject most candidates it may
// repeat that a few times, then return a short page with a token.
func (s *Store) ListInstances(ctx context.Context, q interpreter.ListQuery) (_ []interpreter.InstanceStatus, _ string, err error) {
	defer classify(ctx, &err)
	top := q.Top
	if top <= 0 {
		top = defaultTop
	}
	from := int64(minScore)
	if !q.CreatedFrom.IsZero() {
		from = ms(q.CreatedFrom)
	}
	cur, maxScore := bounds(from, ms(q.CreatedTo), !q.CreatedTo.IsZero())
	if q.ContinuationToken != "" {
		c, err := parseToken(q.ContinuationToken)
		if err != nil {
			return nil, "", err
		}
		if cur.less(c) {
			cur = c
		}
	}
	fields := statusFields
	if !q.WithInput {
		fields = statusFields[:len(statusFields)-1] // the input is last
	}
	want := func(st *interpreter.InstanceStatus) bool {
		return (len(q.Statuses) == 0 || slices.Contains(q.Statuses, st.Status)) &&
			(q.Workflow == "" || st.Name == q.Workflow)
	}
	filtered := len(q.Statuses) > 0 || q.Workflow != ""

	// Entries per partition and round: unfiltered, a little more than a
	// fair share of the page (the boundary cut keeps the order exact, an
	// unlucky spread costs another round); filtered, a wide sweep.
	fetch := min(top, 2*((top+s.n-1)/s.n)+16)
	if filtered || q.Prefix != "" {
		fetch = max(top, 256)
	}
	var out []interpreter.InstanceStatus
	for round := 0; round < listRounds; round++ {
		cands, more, err := s.scanIndex(ctx, cur, maxScore, fetch)
		if err != nil {
			return nil, "", err
		}
		var look []entry
		for _, c := range cands {
			if strings.HasPrefix(string(c.id), q.Prefix) {
				look = append(look, c)
			}
		}
		all := len(look)
		if !filtered {
			look = look[:min(len(look), top-len(out))] // no status or workflow filter: read only what can fill the page
		}
		cmds := make([]*redis.SliceCmd, len(look))
		if len(look) > 0 {
			if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, c := range look {
					cmds[i] = p.HMGet(ctx, s.k.inst(c.p, c.id), fields...)
				}
				return nil
			}); err != nil {
				return nil, "", fmt.Errorf("redisstore: listing: %w", err)
			}
		}
		for i, c := range look {
			st, err := decodeStatus(c.id, cmds[i].Val())
			if err != nil {
				return nil, "", err
			}
			cur = c.cursor
			if st != nil && want(st) {
				out = append(out, *st)
			}
			if len(out) == top {
				if !more && c.cursor == cands[len(cands)-1].cursor {
					return out, "", nil
				}
				return out, cur.token(), nil
			}
		}
		if len(look) < all {
			continue // some instances were gone meanwhile: read on after the last one
		}
		if !more {
			return out, "", nil
		}
		cur = cands[len(cands)-1].cursor
	}
	return out, cur.token(), nil
}

// PurgeMany deletes the finished instances created in [from, to] (zero =
// unbounded) whose status is one of statuses (empty = any finished one;
// unfinished statuses are ignored) and returns how many it deleted. It
// works through the index in batches: two round trips per batch.
func (s *Store) PurgeMany(ctx context.Context, from, to time.Time, statuses []interpreter.RuntimeStatus) (_ int, err error) {
	defer classify(ctx, &err)
	var allowed []any
	for _, st := range statuses {
		if st.Terminal() && !slices.Contains(allowed, any(string(st))) {
			allowed = append(allowed, string(st))
		}
	}
	if len(statuses) == 0 {
		allowed = terminalStatuses
	}
	if len(allowed) == 0 {
		return 0, nil
	}
	lo := int64(minScore)
	if !from.IsZero() {
		lo = ms(from)
	}
	cur, maxScore := bounds(lo, ms(to), !to.IsZero())
	total := 0
	for {
		cands, more, err := s.scanIndex(ctx, cur, maxScore, purgeBatch)
		if err != nil {
			return total, err
		}
		if len(cands) == 0 {
			return total, nil
		}
		byPart := map[int][]entry{}
		for _, c := range cands {
			byPart[c.p] = append(byPart[c.p], c)
		}
		calls := make([]scriptCall, 0, len(byPart))
		for p, es := range byPart {
			keys := make([]string, 3, 3+2*len(es))
			keys[0], keys[1], keys[2] = s.k.index(p), s.k.finished(p), s.k.counts(p)
			args := make([]any, 0, 3+len(allowed)+len(es))
			args = append(args, lo, maxScore, len(allowed))
			args = append(args, allowed...)
			for _, e := range es {
				keys = append(keys, s.k.inst(p, e.id), s.k.hist(p, e.id))
				args = append(args, string(e.id))
			}
			calls = append(calls, scriptCall{script: purgeManyCmd, keys: keys, args: args})
		}
		cmds, err := s.runScripts(ctx, calls)
		if err != nil {
			return total, fmt.Errorf("redisstore: purging: %w", err)
		}
		for _, c := range cmds {
			n, err := c.Int64()
			if err != nil {
				return total, fmt.Errorf("redisstore: purging: %w", err)
			}
			total += int(n)
		}
		if !more {
			return total, nil
		}
		cur = cands[len(cands)-1].cursor
	}
}
