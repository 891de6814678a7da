package redisstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairnhq/cairn/interpreter"
)

// Bulk operations act on instances a caller has listed already (a page of
// ListInstances), in one pipeline of the single-instance scripts, so a
// page of a thousand is one round trip and Redis runs one short script at
// a time: no call holds it for the whole set.

// SendControlMany queues the control message ev (terminate, suspend or
// resume) for each instance and returns one error per id: nil (queued),
// ErrNotFound or ErrFinished (it went or finished since it was listed), or
// another failure. One round trip.
func (s *Store) SendControlMany(ctx context.Context, ids []interpreter.InstanceID, ev interpreter.Event) (_ []error, err error) {
	defer classify(ctx, &err)
	switch ev.Kind {
	case interpreter.EvTerminate, interpreter.EvSuspend, interpreter.EvResume:
	default:
		return nil, fmt.Errorf("redisstore: %q is not a control message", ev.Kind)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s: %w", ev.Kind, err)
	}
	calls := make([]scriptCall, len(ids))
	for i, id := range ids {
		p := s.partition(id)
		calls[i] = scriptCall{script: enqueueEventCmd, keys: []string{s.k.inst(p, id), s.k.work(p)},
			args: append([]any{string(id), b}, terminalStatuses...)}
	}
	return s.bulkCodes(ctx, string(ev.Kind), ids, calls)
}

// PurgeInstances deletes each finished instance and returns one error per
// id: nil (deleted), ErrNotFound, ErrAlreadyRunning (not finished), or
// another failure. One round trip.
func (s *Store) PurgeInstances(ctx context.Context, ids []interpreter.InstanceID) (_ []error, err error) {
	defer classify(ctx, &err)
	calls := make([]scriptCall, len(ids))
	for i, id := range ids {
		p := s.partition(id)
		calls[i] = scriptCall{script: purgeInstanceCmd,
			keys: []string{s.k.inst(p, id), s.k.hist(p, id), s.k.index(p), s.k.finished(p), s.k.counts(p)},
			args: append([]any{string(id)}, terminalStatuses...)}
	}
	return s.bulkCodes(ctx, "purge", ids, calls)
}

// bulkCodes runs calls, one per id, and turns their result codes into
// errors.
func (s *Store) bulkCodes(ctx context.Context, op string, ids []interpreter.InstanceID, calls []scriptCall) ([]error, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("redisstore: bulk %s: %w", op, err)
	}
	errs := make([]error, len(ids))
	for i, c := range cmds {
		code, err := c.Int64()
		if err != nil {
			errs[i] = fmt.Errorf("redisstore: %s %s: %w", op, ids[i], err)
			continue
		}
		if err := codeErr(code); err != nil {
			errs[i] = fmt.Errorf("instance %s: %w", ids[i], err)
		}
	}
	return errs, nil
}
