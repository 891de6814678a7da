package redisstore

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

//go:embed scripts/probe_task.lua
var probeTaskSrc string

// probeTaskCmd is not in allScripts: it runs only when the watch of an
// attempt with a scheduleToStart or heartbeat timeout fires, and
// runScripts loads a script the server lacks.
var probeTaskCmd = redis.NewScript(probeTaskSrc)

var _ interpreter.TaskProber = (*Store)(nil)

// ProbeTasks says of each task whether it is still open, and whether a
// consumer holds it and since when it has been silent: the idle time of
// its entry in the consumer group, which delivery and every heartbeat
// (ExtendTasks) reset, so a heartbeat costs nothing more for the watch to
// see it. A task handed back (ReleaseTasks, a long poll's surplus) counts
// as queued. One script call per task, pipelined: one round trip.
func (s *Store) ProbeTasks(ctx context.Context, refs []interpreter.TaskProbeRef) (_ []interpreter.TaskProbe, err error) {
	defer classify(ctx, &err)
	calls := make([]scriptCall, len(refs))
	for i, ref := range refs {
		p := s.partition(ref.Instance)
		calls[i] = scriptCall{script: probeTaskCmd,
			keys: []string{s.k.tasks(p, queueOf(ref.Queue)), s.k.inst(p, ref.Instance)},
			args: []any{groupWorkers, ref.TaskID}}
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("redisstore: probing tasks: %w", err)
	}
	out := make([]interpreter.TaskProbe, len(refs))
	for i, c := range cmds {
		res, err := c.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("redisstore: probing task %s of %s: %w", refs[i].TaskID, refs[i].Instance, err)
		}
		switch {
		case len(res) == 1 && res[0] == 1:
			out[i].Open = true
		case len(res) == 2 && res[0] == 2:
			out[i].Open = true
			if idle := time.Duration(res[1]) * time.Millisecond; idle < releasedIdle {
				out[i].Taken, out[i].Idle = true, idle
			}
		case len(res) != 1 || res[0] != 0:
			return nil, fmt.Errorf("redisstore: probing task %s of %s: unexpected reply %v", refs[i].TaskID, refs[i].Instance, res)
		}
	}
	return out, nil
}
