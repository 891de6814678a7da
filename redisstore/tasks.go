package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// This file is the activity side. A commit puts each ScheduleTask on the
// task stream of its instance's partition and queue; the activity runtime
// (in process, or external workers through the HTTP API) reads tasks with a
// lease, completes or fails them, extends the lease by heartbeats, and
// reclaims tasks whose lease expired because their consumer died.

// releasedIdle is the idle time given to tasks handed back by a read that
// got more than asked: any ReclaimTasks takes them at once.
const releasedIdle = 30 * 24 * time.Hour

// TaskRef addresses one delivered activity task; TaskToken turns it into
// an opaque token for external workers and ParseTaskRef reads it back.
type TaskRef = interpreter.TaskRef

// Task is one activity task leased to a consumer.
type Task = interpreter.Task

// TaskToken is the opaque token form of r, handed to external workers.
func TaskToken(r TaskRef) string { return r.Token() }

// ParseTaskRef reads a TaskToken; a malformed one is ErrNotFound.
func ParseTaskRef(token string) (TaskRef, error) { return interpreter.ParseTaskToken(token) }

// ReadTasks leases up to limit (at least 1) new tasks of queue ("" =
// LocalQueue) to consumer, taking at most ceil(limit/P) from each
// partition, waiting up to block (0 = not at all) for the first. One round
// trip; a second when more than limit arrived at once (the surplus, fewer
// than P, is handed back for ReclaimTasks to take at once).
func (s *Store) ReadTasks(ctx context.Context, consumer, queue string, limit int, block time.Duration) ([]Task, error) {
	queue = queueOf(queue)
	limit = max(limit, 1)
	streams := make([]string, s.n)
	for p := range streams {
		streams[p] = s.k.tasks(p, queue)
	}
	// Ask each partition for its share only: surplus tasks cost a command
	// each to hand back.
	res, err := s.readGroup(ctx, groupWorkers, consumer, streams, (limit+s.n-1)/s.n, block)
	if err != nil {
		return nil, err
	}
	var tasks []Task
	for _, st := range res {
		tasks = s.appendTasks(ctx, tasks, queue, st.Stream, slices.Index(streams, st.Stream), st.Messages)
	}
	return s.keep(ctx, consumer, tasks, limit), nil
}

// ReclaimTasks takes over up to limit (at least 1) tasks of queue whose consumer has not
// completed, failed or extended them for minIdle. One round trip; a second
// when more than limit were taken.
func (s *Store) ReclaimTasks(ctx context.Context, consumer, queue string, minIdle time.Duration, limit int) ([]Task, error) {
	queue = queueOf(queue)
	limit = max(limit, 1)
	cmds := make([]*redis.XAutoClaimCmd, s.n)
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: s.k.tasks(i, queue), Group: groupWorkers, Consumer: consumer,
				MinIdle: minIdle, Start: "0-0", Count: int64(limit),
			})
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return nil, fmt.Errorf("redisstore: reclaiming tasks: %w", err)
	}
	var tasks []Task
	for p, c := range cmds {
		msgs, _, err := c.Result()
		if isReply(err, replyNoGroup) {
			continue // never read
		}
		if err != nil {
			return nil, fmt.Errorf("redisstore: reclaiming tasks: %w", err)
		}
		tasks = s.appendTasks(ctx, tasks, queue, s.k.tasks(p, queue), p, msgs)
	}
	return s.keep(ctx, consumer, tasks, limit), nil
}

// appendTasks decodes the entries of partition p's task stream; corrupt
// ones are dropped.
func (s *Store) appendTasks(ctx context.Context, tasks []Task, queue, stream string, p int, msgs []redis.XMessage) []Task {
	var bad []string
	var cause error
	for _, m := range msgs {
		var t Task
		j, _ := m.Values["j"].(string)
		if err := json.Unmarshal([]byte(j), &t.Schedule); err != nil || t.Schedule.Instance == "" {
			bad, cause = append(bad, m.ID), fmt.Errorf("task entry %s: %q: %v", m.ID, j, err)
			continue
		}
		t.Ref = TaskRef{Partition: p, Queue: queue, EntryID: m.ID, Instance: t.Schedule.Instance, TaskID: t.Schedule.TaskID}
		tasks = append(tasks, t)
	}
	if len(bad) > 0 {
		s.drop(ctx, groupWorkers, map[string][]string{stream: bad}, cause)
	}
	return tasks
}

// keep returns the limit oldest tasks and hands the others back: they stay
// pending but look long idle, so the next ReclaimTasks takes them.
func (s *Store) keep(ctx context.Context, consumer string, tasks []Task, limit int) []Task {
	if len(tasks) <= limit {
		return tasks
	}
	slices.SortFunc(tasks, func(a, b Task) int { return compareIDs(a.Ref.EntryID, b.Ref.EntryID) })
	extra := tasks[limit:]
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range extra {
			p.Do(ctx, "XCLAIM", s.k.tasks(t.Ref.Partition, t.Ref.Queue), groupWorkers, consumer,
				0, t.Ref.EntryID, "IDLE", releasedIdle.Milliseconds(), "JUSTID")
		}
		return nil
	})
	_ = err // if handing back fails, the lease simply expires
	return tasks[:limit]
}

// compareIDs orders stream entry ids "ms-seq" numerically.
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	return cmp.Or(cmp.Compare(len(am), len(bm)), strings.Compare(am, bm),
		cmp.Compare(len(as), len(bs)), strings.Compare(as, bs))
}

// CompleteTask acknowledges the task and queues its result for the
// instance, atomically. A task already completed, failed or never leased
// is ErrDuplicate and queues nothing, so repeating a completion is safe.
// One round trip.
func (s *Store) CompleteTask(ctx context.Context, ref TaskRef, result json.RawMessage, now time.Time) error {
	return s.finish(ctx, ref, interpreter.Event{Kind: interpreter.EvCompleted, Time: now, TaskID: ref.TaskID, Data: result})
}

// FailTask acknowledges the task and queues its failure for the instance,
// as CompleteTask. One round trip.
func (s *Store) FailTask(ctx context.Context, ref TaskRef, info interpreter.ErrorInfo, now time.Time) error {
	return s.finish(ctx, ref, interpreter.Event{Kind: interpreter.EvFailed, Time: now, TaskID: ref.TaskID, Error: &info})
}

// validRef reports whether ref can address a task: its partition is its
// instance's (so the task and work streams share a slot).
func (s *Store) validRef(ref TaskRef) error {
	if ref.Instance == "" || ref.Partition != s.partition(ref.Instance) {
		return fmt.Errorf("task %s: bad reference: %w", ref.TaskID, interpreter.ErrNotFound)
	}
	return nil
}

func (s *Store) finish(ctx context.Context, ref TaskRef, ev interpreter.Event) error {
	if err := s.validRef(ref); err != nil {
		return err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("redisstore: task %s: %w", ref.TaskID, err)
	}
	if err := s.runCode(ctx, "finish task", finishTaskCmd,
		[]string{s.k.tasks(ref.Partition, queueOf(ref.Queue)), s.k.work(ref.Partition)},
		groupWorkers, ref.EntryID, string(ref.Instance), b); err != nil {
		return fmt.Errorf("task %s of %s: %w", ref.TaskID, ref.Instance, err)
	}
	return nil
}

// ExtendTask renews consumer's lease on the task (a heartbeat): its idle
// time restarts, so ReclaimTasks leaves it alone. ErrNotFound when the
// task is closed (completed, failed, purged); ErrConflict when another
// consumer reclaimed it after this one's lease expired. One round trip.
func (s *Store) ExtendTask(ctx context.Context, consumer string, ref TaskRef) error {
	if err := s.validRef(ref); err != nil {
		return err
	}
	err := s.runCode(ctx, "extend task", extendTaskCmd,
		[]string{s.k.tasks(ref.Partition, queueOf(ref.Queue))}, groupWorkers, consumer, ref.EntryID)
	if isReply(err, replyNoGroup) {
		err = interpreter.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("task %s of %s: %w", ref.TaskID, ref.Instance, err)
	}
	return nil
}
