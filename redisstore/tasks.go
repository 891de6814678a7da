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
// LocalQueue) to consumer, waiting up to block (0 = not at all) for the
// first. It reads as ReadTaskBatch and hands back what is beyond limit
// (fewer than P tasks) for the next ReclaimTasks to take at once: one
// round trip, a second when there is such a surplus. For callers that can
// hold only limit tasks (a long poll of an external worker); the activity
// runtime uses ReadTaskBatch and keeps the surplus.
func (s *Store) ReadTasks(ctx context.Context, consumer, queue string, limit int, block time.Duration) (_ []Task, err error) {
	defer classify(ctx, &err)
	limit = max(limit, 1)
	tasks, err := s.ReadTaskBatch(ctx, consumer, queue, limit, block)
	if err != nil {
		return nil, err
	}
	return s.keep(ctx, consumer, tasks, limit), nil
}

// ReadTaskBatch leases new tasks of queue ("" = LocalQueue) to consumer,
// waiting up to block (0 = not at all) for the first. It asks each of the
// P partitions for ceil(want/P) tasks (COUNT applies per stream of one
// XREADGROUP) and returns all it got, oldest of each partition first: at
// least want when that many are waiting, fewer than want+P in all. Every
// one is leased to consumer; nothing is handed back. One round trip.
func (s *Store) ReadTaskBatch(ctx context.Context, consumer, queue string, want int, block time.Duration) (_ []Task, err error) {
	defer classify(ctx, &err)
	queue = queueOf(queue)
	streams := make([]string, s.n)
	for p := range streams {
		streams[p] = s.k.tasks(p, queue)
	}
	// Only the in-process runtime's queue reads back after a failed read:
	// it keeps the tasks it holds and never runs one twice, which an
	// external worker, polling under its own name, cannot promise.
	res, err := s.readGroup(ctx, groupWorkers, consumer, streams, s.perPartition(want), block, queue == queueOf(interpreter.LocalQueue))
	if err != nil {
		return nil, err
	}
	var tasks []Task
	at := 0
	for _, st := range res {
		p := 0 // Redis replies only for streams asked for; 0 is what a map lookup gave
		if i := streamIndex(streams, st.Stream, at); i >= 0 {
			at, p = i, i
		}
		tasks = s.appendTasks(ctx, tasks, queue, st.Stream, p, st.Messages)
	}
	return tasks, nil
}

// perPartition is the COUNT per stream that lets a read of all P
// partitions return want tasks even when they all wait in one partition.
func (s *Store) perPartition(want int) int { return (max(want, 1) + s.n - 1) / s.n }

// ReclaimTasks takes over up to limit (at least 1) tasks of queue whose
// consumer has not completed, failed or extended them for minIdle (or
// handed them back): ReclaimTaskBatch, which never takes more than limit.
func (s *Store) ReclaimTasks(ctx context.Context, consumer, queue string, minIdle time.Duration, limit int) (_ []Task, err error) {
	defer classify(ctx, &err)
	tasks, _, err := s.ReclaimTaskBatch(ctx, consumer, queue, minIdle, limit)
	if err != nil {
		// What the other partitions gave is leased to consumer: hand it
		// back rather than let it wait out a lease.
		s.keep(ctx, consumer, tasks, 0)
		return nil, err
	}
	return tasks, nil
}

// ReclaimTaskBatch takes over the oldest want (at least 1) tasks of queue
// whose consumer has not completed, failed or extended them for minIdle,
// or that were handed back. It looks with XPENDING IDLE, which only reads
// and scans the whole list of pending tasks (XAUTOCLAIM stops after
// 10×COUNT entries, so expired tasks behind many live ones could wait for
// ever, and it claims up to COUNT per partition, more than want in all),
// then claims just the chosen ones with XCLAIM, whose min-idle check
// leaves a task renewed meanwhile to its holder. One round trip when none
// has expired (one XPENDING per partition, pipelined), two otherwise (one
// XCLAIM per partition concerned). more reports that there may be more
// such tasks than were taken. A partition whose stream or group does not
// exist yet is skipped; when some partition fails, the tasks the others
// gave are returned with the error: they are leased to consumer.
func (s *Store) ReclaimTaskBatch(ctx context.Context, consumer, queue string, minIdle time.Duration, want int) (tasks []Task, more bool, err error) {
	defer classify(ctx, &err)
	queue = queueOf(queue)
	want = max(want, 1)
	pend := make([]*redis.XPendingExtCmd, s.n)
	if _, perr := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range pend {
			pend[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: s.k.tasks(i, queue), Group: groupWorkers, Idle: minIdle,
				Start: "-", End: "+", Count: int64(want),
			})
		}
		return nil
	}); perr != nil && !isRedisError(perr) {
		return nil, false, fmt.Errorf("redisstore: reclaiming tasks: %w", perr)
	}
	type expired struct {
		p  int
		id string
	}
	var found []expired
	for p, c := range pend {
		res, cerr := c.Result()
		if isReply(cerr, replyNoGroup) {
			continue // never read
		}
		if cerr != nil {
			err = cmp.Or(err, fmt.Errorf("redisstore: reclaiming tasks: %w", cerr))
			continue
		}
		more = more || len(res) == want // this partition may hold more
		for _, e := range res {
			found = append(found, expired{p, e.ID})
		}
	}
	if len(found) > want {
		slices.SortFunc(found, func(a, b expired) int { return compareIDs(a.id, b.id) })
		found, more = found[:want], true
	}
	if len(found) == 0 {
		return nil, more, err
	}
	byPart := map[int][]string{}
	for _, f := range found {
		byPart[f.p] = append(byPart[f.p], f.id)
	}
	claims := map[int]*redis.XMessageSliceCmd{}
	if _, perr := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for part, ids := range byPart {
			claims[part] = p.XClaim(ctx, &redis.XClaimArgs{
				Stream: s.k.tasks(part, queue), Group: groupWorkers, Consumer: consumer,
				MinIdle: minIdle, Messages: ids,
			})
		}
		return nil
	}); perr != nil && !isRedisError(perr) {
		// Whether the claims were made is unknown: if they were, the tasks
		// come back to a reclaim after the lease.
		return nil, more, cmp.Or(err, fmt.Errorf("redisstore: reclaiming tasks: %w", perr))
	}
	for part, c := range claims {
		msgs, cerr := c.Result()
		if cerr != nil {
			err = cmp.Or(err, fmt.Errorf("redisstore: reclaiming tasks: %w", cerr))
			continue
		}
		tasks = s.appendTasks(ctx, tasks, queue, s.k.tasks(part, queue), part, msgs)
	}
	return tasks, more, err
}

// appendTasks decodes the entries of partition p's task stream; corrupt
// ones are dropped.
func (s *Store) appendTasks(ctx context.Context, tasks []Task, queue, stream string, p int, msgs []redis.XMessage) []Task {
	var bad []string
	var cause error
	tasks = slices.Grow(tasks, len(msgs))
	for _, m := range msgs {
		// Decoded in place: a Task of its own would escape to the heap.
		tasks = append(tasks, Task{})
		t := &tasks[len(tasks)-1]
		j, _ := m.Values["j"].(string)
		if err := decodeTask(j, &t.Schedule); err != nil || t.Schedule.Instance == "" {
			tasks = tasks[:len(tasks)-1]
			bad, cause = append(bad, m.ID), fmt.Errorf("task entry %s: %q: %v", m.ID, j, err)
			continue
		}
		t.Ref = TaskRef{Partition: p, Queue: queue, EntryID: m.ID, Instance: t.Schedule.Instance, TaskID: t.Schedule.TaskID}
	}
	if len(bad) > 0 {
		s.drop(ctx, groupWorkers, map[string][]string{stream: bad}, cause)
	}
	return tasks
}

// keep returns the limit oldest tasks and hands the others back: they stay
// pending but look long idle, so the next ReclaimTasks takes them. They
// were just delivered to consumer, so no owner check is needed: one
// XCLAIM per stream, in one pipeline.
func (s *Store) keep(ctx context.Context, consumer string, tasks []Task, limit int) []Task {
	if len(tasks) <= limit {
		return tasks
	}
	slices.SortFunc(tasks, func(a, b Task) int { return compareIDs(a.Ref.EntryID, b.Ref.EntryID) })
	byStream := map[string][]any{}
	for _, t := range tasks[limit:] {
		st := s.k.tasks(t.Ref.Partition, t.Ref.Queue)
		byStream[st] = append(byStream[st], t.Ref.EntryID)
	}
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for st, ids := range byStream {
			args := append([]any{"XCLAIM", st, groupWorkers, consumer, 0}, ids...)
			p.Do(ctx, append(args, "IDLE", releasedIdle.Milliseconds(), "JUSTID")...)
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
// is ErrDuplicate and queues nothing, so repeating a completion is safe;
// one withdrawn by the commit that ended its instance (or whose instance
// was purged) is ErrInstanceFinished. One round trip.
func (s *Store) CompleteTask(ctx context.Context, ref TaskRef, result json.RawMessage, now time.Time) (err error) {
	defer classify(ctx, &err)
	return s.finish(ctx, ref, interpreter.Event{Kind: interpreter.EvCompleted, Time: now, TaskID: ref.TaskID, Data: result})
}

// FailTask acknowledges the task and queues its failure for the instance,
// as CompleteTask. One round trip.
func (s *Store) FailTask(ctx context.Context, ref TaskRef, info interpreter.ErrorInfo, now time.Time) (err error) {
	defer classify(ctx, &err)
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
		[]string{s.k.tasks(ref.Partition, queueOf(ref.Queue)), s.k.work(ref.Partition), s.k.inst(ref.Partition, ref.Instance)},
		groupWorkers, ref.EntryID, string(ref.Instance), b, ref.TaskID); err != nil {
		return fmt.Errorf("task %s of %s: %w", ref.TaskID, ref.Instance, err)
	}
	return nil
}

// ExtendTask renews consumer's lease on the task (a heartbeat): its idle
// time restarts, so ReclaimTasks leaves it alone. ErrInstanceFinished when
// the task was withdrawn by the commit that ended its instance (or its
// instance was purged);
// ErrNotFound when it is otherwise closed (completed, failed, withdrawn
// after its attempt timed out); ErrConflict when another consumer
// reclaimed it after this one's lease expired. One round trip.
func (s *Store) ExtendTask(ctx context.Context, consumer string, ref TaskRef) (err error) {
	defer classify(ctx, &err)
	return s.ExtendTasks(ctx, consumer, []TaskRef{ref})[0]
}

// ExtendTasks is ExtendTask for several tasks in one round trip (one
// script call each, pipelined); errs[i] is refs[i]'s outcome.
func (s *Store) ExtendTasks(ctx context.Context, consumer string, refs []TaskRef) (errs []error) {
	defer classifyEach(ctx, &errs)
	return s.setIdle(ctx, "extend task", consumer, refs, 0)
}

// ReleaseTasks hands back tasks consumer holds but will not run (a
// runtime shutting down with tasks queued): they stay pending but look
// long idle, so the next ReclaimTasks or ReclaimTaskBatch of any consumer
// takes them without waiting out their lease. Errors are as ExtendTask's;
// a task another consumer holds now is left to it. One round trip.
func (s *Store) ReleaseTasks(ctx context.Context, consumer string, refs []TaskRef) (errs []error) {
	defer classifyEach(ctx, &errs)
	return s.setIdle(ctx, "release task", consumer, refs, releasedIdle)
}

// setIdle runs extend_task.lua for each ref in one pipeline.
func (s *Store) setIdle(ctx context.Context, name, consumer string, refs []TaskRef, idle time.Duration) []error {
	errs := make([]error, len(refs))
	calls := make([]scriptCall, 0, len(refs))
	at := make([]int, 0, len(refs)) // calls[j] is refs[at[j]]
	for i, ref := range refs {
		if err := s.validRef(ref); err != nil {
			errs[i] = err
			continue
		}
		calls = append(calls, scriptCall{script: extendTaskCmd,
			keys: []string{s.k.tasks(ref.Partition, queueOf(ref.Queue)), s.k.inst(ref.Partition, ref.Instance)},
			args: []any{groupWorkers, consumer, ref.EntryID, idle.Milliseconds(), ref.TaskID}})
		at = append(at, i)
	}
	if len(calls) == 0 {
		return errs
	}
	cmds, perr := s.runScripts(ctx, calls)
	for j, i := range at {
		err := perr
		if err == nil {
			var code int64
			code, err = cmds[j].Int64()
			switch {
			case isReply(err, replyNoGroup):
				err = interpreter.ErrNotFound
			case err != nil:
				err = fmt.Errorf("redisstore: %s: %w", name, err)
			default:
				err = codeErr(code)
			}
		} else {
			err = fmt.Errorf("redisstore: %s: %w", name, err)
		}
		if err != nil {
			errs[i] = fmt.Errorf("task %s of %s: %w", refs[i].TaskID, refs[i].Instance, err)
		}
	}
	return errs
}

// WatchWithdrawn calls fn with the instance and task ids of every task a
// commit withdraws while a consumer holds it (the instance ended,
// continued as new, dropped the branch, or the attempt timed out), until
// ctx ends; then it returns nil. It subscribes to every partition's
// withdrawn channel on one connection (re-established by the client when
// lost) and calls subscribed, when not nil, once Redis has confirmed the
// subscription: a consumer waits for that before its first task read, so
// that no task it reads can be withdrawn unseen. Notices published while
// it is not subscribed are lost, as with any Redis pub/sub: the
// consumer's next lease renewal finds such a task closed. fn runs on
// WatchWithdrawn's goroutine and must return quickly.
func (s *Store) WatchWithdrawn(ctx context.Context, subscribed func(), fn func(interpreter.InstanceID, []string)) (err error) {
	defer classify(ctx, &err)
	chans := make([]string, s.n)
	for p := range chans {
		chans[p] = s.k.withdrawn(p)
	}
	ps := s.client.Subscribe(ctx, chans...)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("redisstore: watching withdrawn tasks: %w", err)
	}
	msgs := ps.Channel()
	if subscribed != nil {
		subscribed()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			var w withdrawal
			if err := json.Unmarshal([]byte(m.Payload), &w); err != nil || w.Instance == "" {
				s.log.Error("redisstore: bad withdrawal notice", "channel", m.Channel, "payload", m.Payload, "err", err)
				continue
			}
			fn(w.Instance, w.Tasks)
		}
	}
}
