package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// This file is the engine side: the interpreter.Store methods.

// ReadWork returns new work items of the partitions for this consumer,
// waiting up to block (0 = not at all) for the first. It reads at most
// ceil(limit/len(partitions)) items per partition, so it may return up to
// len(partitions)-1 more than limit. One round trip (a cluster polls).
func (s *Store) ReadWork(ctx context.Context, consumer string, partitions []int, limit int, block time.Duration) (_ []interpreter.WorkItem, err error) {
	defer classify(ctx, &err)
	if len(partitions) == 0 {
		return nil, nil
	}
	streams := make([]string, len(partitions))
	for i, p := range partitions {
		streams[i] = s.k.work(p)
	}
	count := max(1, (limit+len(partitions)-1)/len(partitions))
	res, err := s.readGroup(ctx, groupEngine, consumer, streams, count, block, true)
	if err != nil {
		return nil, err
	}
	var items []interpreter.WorkItem
	at := 0
	for _, st := range res {
		p := 0 // Redis replies only for streams asked for; 0 is what a map lookup gave
		if i := streamIndex(streams, st.Stream, at); i >= 0 {
			at, p = i, partitions[i]
		}
		items = s.appendWork(ctx, items, st.Stream, p, st.Messages)
	}
	return items, nil
}

// streamIndex is the index of name in streams, -1 when absent. The search
// starts at from: a read's reply lists its streams in the order they were
// asked for, so a walk over the reply finds each one at or after the
// last (a map per read was an allocation per stream).
func streamIndex(streams []string, name string, from int) int {
	for i := range streams {
		if j := (from + i) % len(streams); streams[j] == name {
			return j
		}
	}
	return -1
}

// appendWork decodes messages of one work stream; corrupt ones are dropped.
func (s *Store) appendWork(ctx context.Context, items []interpreter.WorkItem, stream string, p int, msgs []redis.XMessage) []interpreter.WorkItem {
	var bad []string
	var cause error
	items = slices.Grow(items, len(msgs))
	for _, m := range msgs {
		// Decoded in place: a WorkItem of its own would escape to the heap.
		items = append(items, interpreter.WorkItem{})
		if err := decodeWork(&items[len(items)-1], m.ID, p, m.Values); err != nil {
			items = items[:len(items)-1]
			bad, cause = append(bad, m.ID), err
		}
	}
	if len(bad) > 0 {
		s.drop(ctx, groupEngine, map[string][]string{stream: bad}, cause)
	}
	return items
}

// ReclaimWork takes over up to max work items of the partition that other
// consumers have held unacknowledged for longer than minIdle. One round
// trip.
func (s *Store) ReclaimWork(ctx context.Context, consumer string, partition int, minIdle time.Duration, max int) (_ []interpreter.WorkItem, err error) {
	defer classify(ctx, &err)
	stream := s.k.work(partition)
	msgs, _, err := s.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: groupEngine, Consumer: consumer,
		MinIdle: minIdle, Start: "0-0", Count: int64(max),
	}).Result()
	if isReply(err, replyNoGroup) {
		return nil, nil // nothing was ever read there
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: reclaiming work: %w", err)
	}
	return s.appendWork(ctx, nil, stream, partition, msgs), nil
}

// LoadStates reads the states of the instances, nil for a missing one. One
// round trip.
func (s *Store) LoadStates(ctx context.Context, ids []interpreter.InstanceID) (_ []*interpreter.State, err error) {
	defer classify(ctx, &err)
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = hmget(ctx, s.k.inst(s.partition(id), id), stateArgs)
			_ = p.Process(ctx, cmds[i])
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("redisstore: loading states: %w", err)
	}
	out := make([]*interpreter.State, len(ids))
	for i, c := range cmds {
		st, err := decodeState(ids[i], c.Val())
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// Commit applies the transitions in order, each atomically in one script
// run: if the revision is still FromRevision (else ErrConflict) and the
// work item is still unacknowledged (else ErrDuplicate), it acknowledges
// the item and writes the state (at revision FromRevision+1, also set in
// t.State.Revision), the tasks, timers, history and status notice. A
// redelivered item whose effect is committed thus meets ErrConflict first,
// then, recomputed on the fresh state, ErrDuplicate. It returns one error
// per transition: nil, ErrConflict or ErrDuplicate (nothing written), or
// another failure. One round trip for the whole batch.
func (s *Store) Commit(ctx context.Context, ts []*interpreter.Transition) (errs []error, err error) {
	defer classify(ctx, &err)
	defer classifyEach(ctx, &errs)
	errs = make([]error, len(ts))
	calls := make([]scriptCall, 0, len(ts))
	idx := make([]int, 0, len(ts))
	for i, t := range ts {
		c, err := s.commitCall(t)
		if err != nil {
			errs[i] = err
			continue
		}
		calls = append(calls, c)
		idx = append(idx, i)
	}
	if len(calls) == 0 {
		return errs, nil
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("redisstore: commit: %w", err)
	}
	for j, c := range cmds {
		i := idx[j]
		code, err := c.Int64()
		if err != nil {
			errs[i] = fmt.Errorf("redisstore: commit %s: %w", ts[i].State.ID, err)
			continue
		}
		if errs[i] = codeErr(code); errs[i] == nil {
			ts[i].State.Revision = ts[i].FromRevision + 1
		}
	}
	return errs, nil
}

// commitCall builds the commit_transition call of one transition.
//
// Its memory is a few allocations whatever the transition: the argument
// lists, the keys, the variable values and the arguments struct are one
// commitMem (when they fit its arrays, as a usual transition's do), and
// every encoding (meta, runtime, status notice, tasks, history, timer
// members, payload copies) is written into one byte buffer sized up front.
// Strings are views of that buffer: nothing writes to what was handed out
// (a growth copies to a new array and leaves the old one as it was).
func (s *Store) commitCall(t *interpreter.Transition) (scriptCall, error) {
	st := t.State
	if st == nil {
		return scriptCall{}, errors.New("redisstore: commit: transition without state")
	}
	p := s.partition(st.ID)
	newRev := t.FromRevision + 1
	ackTask, ackName := "", ""
	ackKey := ""
	if a := t.TaskAck; a != nil {
		if t.WorkID != "" {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: a transition consumes a work item or a task, not both", st.ID)
		}
		if err := s.validRef(*a); err != nil || a.Instance != st.ID {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: task %s is not this instance's", st.ID, a.TaskID)
		}
		ackKey, ackTask, ackName = s.k.tasks(p, queueOf(a.Queue)), a.EntryID, a.TaskID
	}
	// The variable part is gathered as values first, then handed to
	// go-redis as pointers to them (see commitArgs.appendRefs): vals holds
	// the strings, dues the timers' due times, both sized up front so that
	// no pointer outlives a growth.
	var nTasks, nAdds, nRems, nCancels int
	size := stateSize(st) + len(st.Output) + len(st.CustomStatus) + 24
	if t.StatusChanged {
		size += 128 + len(st.CustomStatus) + len(st.Output)
	}
	if s.histMax > 0 && len(t.History) > 0 {
		size += historySize(t.History)
	}
	for _, c := range t.Commands {
		switch c := c.(type) {
		case *interpreter.ScheduleTask:
			nTasks++
			size += 256 + len(c.Input)
		case *interpreter.CancelTask:
			nCancels++
		case *interpreter.StartTimer:
			nAdds++
			size += len(st.ID) + 1 + len(c.ID)
		case *interpreter.CancelTimer:
			nRems++
			size += len(st.ID) + 1 + len(c.ID)
		default:
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: unknown command %T", st.ID, c)
		}
	}
	var open []openTask
	if suspendsOrResumes(t) {
		open = openTasks(st)
	}
	nKeys := commitKeyc + nTasks + nCancels + len(open) // then a task stream per task, cancel and open task
	nVals := 2*nTasks + nAdds + nRems + nCancels + len(open)
	nArgv := evalShaHead + nKeys + commitArgc + nVals + nAdds
	m := new(commitMem)
	keys := grow(m.keys[:0], nKeys)
	vals := grow(m.vals[:0], nVals)[:nVals]
	dues := grow(m.dues[:0], nAdds)[:nAdds]
	argv := grow(m.argv[:0], nArgv)[:evalShaHead+nKeys]

	b := make([]byte, 0, size)
	var err error
	view := func(from int) string { return bytesString(b[from:len(b):len(b)]) }
	if b, err = appendMeta(b, st); err != nil {
		return scriptCall{}, fmt.Errorf("redisstore: commit %s: %w", st.ID, err)
	}
	metaJSON := view(0)
	n := len(b)
	if b, err = appendRuntime(b, st); err != nil {
		return scriptCall{}, fmt.Errorf("redisstore: commit %s: %w", st.ID, err)
	}
	rtJSON := view(n)
	var change string
	if t.StatusChanged {
		n = len(b)
		if b, err = appendStatusChange(b, &interpreter.StatusChange{
			Instance: st.ID, Status: st.Status, CustomStatus: st.CustomStatus,
			Output: st.Output, Revision: newRev, Time: st.LastUpdatedTime,
		}); err != nil {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: %w", st.ID, err)
		}
		change = view(n)
	}
	n = len(b)
	b = append(b, st.Output...)
	output := view(n)
	n = len(b)
	b = append(b, st.CustomStatus...)
	custom := view(n)

	inst, hist, status := s.k.instKeys(p, st.ID)
	work := s.k.work(p)
	if ackKey == "" {
		ackKey = work
	}
	ck := commitKeys{InstKey: inst, HistKey: hist, WorkKey: work, TimersKey: s.k.timers(p),
		FinishedKey: s.k.finished(p), AckTaskKey: ackKey, CountsKey: s.k.counts(p)}
	keys = ck.appendTo(keys)
	// Offsets of each kind in vals, in ARGV order.
	ti, ai, ri, ci := 0, 2*nTasks, 2*nTasks+nAdds, 2*nTasks+nAdds+nRems
	oi, di := ci+nCancels, 0
	var withdrawn []string
	var cancelKeys []string
	if nCancels > 0 {
		cancelKeys = make([]string, 0, nCancels)
		withdrawn = make([]string, 0, nCancels)
	}
	for _, c := range t.Commands {
		switch c := c.(type) {
		case *interpreter.ScheduleTask:
			n = len(b)
			if b, err = appendTask(b, c); err != nil {
				return scriptCall{}, fmt.Errorf("redisstore: commit %s: task: %w", st.ID, err)
			}
			keys = append(keys, s.k.tasks(p, queueOf(c.Queue)))
			vals[ti], vals[ti+1] = view(n), c.TaskID
			ti += 2
		case *interpreter.CancelTask:
			cancelKeys = append(cancelKeys, s.k.tasks(p, queueOf(c.Queue)))
			vals[ci] = c.TaskID
			ci++
			withdrawn = append(withdrawn, c.TaskID)
		case *interpreter.StartTimer:
			n = len(b)
			b = appendTimerMember(b, st.ID, c.ID)
			dues[di], vals[ai] = ms(c.Due), view(n)
			di++
			ai++
		case *interpreter.CancelTimer:
			n = len(b)
			b = appendTimerMember(b, st.ID, c.ID)
			vals[ri] = view(n)
			ri++
		}
	}
	keys = append(keys, cancelKeys...)
	for _, ot := range open {
		keys = append(keys, s.k.tasks(p, ot.Queue))
		vals[oi] = ot.TaskID
		oi++
	}
	var notice []byte
	if len(withdrawn) > 0 {
		if notice, err = json.Marshal(withdrawal{Instance: st.ID, Tasks: withdrawn}); err != nil {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: %w", st.ID, err)
		}
	}
	var histEntry string
	if s.histMax > 0 && len(t.History) > 0 {
		n = len(b)
		if b, err = appendHistory(b, t.History); err != nil {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: history: %w", st.ID, err)
		}
		histEntry = view(n)
	}
	ends := ""
	if st.Status.Terminal() {
		ends = "1"
	}
	finished := ""
	if s.retain.enabled() && t.StatusChanged && st.Status.Terminal() {
		n = len(b)
		b = strconv.AppendInt(b, ms(st.LastUpdatedTime), 10)
		finished = view(n)
	}
	a := &m.args
	*a = commitArgs{
		WorkGroup: groupEngine, WorkID: t.WorkID, FromRev: t.FromRevision, NewRev: newRev,
		Status: string(st.Status), Meta: metaJSON, Output: output, CustomStatus: custom,
		Runtime:    rtJSON,
		HistoryMax: s.histMax, StatusChannel: status, StatusChange: change,
		NTasks: nTasks, NTimerAdds: nAdds, NTimerRemoves: nRems,
		HistoryEntry: histEntry, FinishedAt: finished, InstanceID: string(st.ID), CreatedAt: ms(st.CreatedTime),
		TaskGroup: groupWorkers, AckTaskID: ackTask, AckTaskName: ackName,
		NCancels: nCancels, WithdrawnChannel: s.k.withdrawn(p), WithdrawnNotice: bytesString(notice),
		Ends: ends, NOpen: len(open), Workflow: st.Name, RunInput: runInput(t), Message: t.Message,
	}
	// argv is the whole EVALSHA command (evalSha sends it as it is); its
	// head is filled in last, when keys no longer grows.
	argv = a.appendRefs(argv)
	for i := range 2 * nTasks {
		argv = append(argv, &vals[i])
	}
	for i := range dues {
		argv = append(argv, &dues[i], &vals[2*nTasks+i])
	}
	for i := 2*nTasks + nAdds; i < len(vals); i++ {
		argv = append(argv, &vals[i])
	}
	c := scriptCall{script: commitTransitionCmd, keys: keys, args: argv[evalShaHead+len(keys):]}
	if h := scriptHash(commitTransitionCmd); h != nil {
		argv[0], argv[1], argv[2] = "evalsha", h, len(keys)
		for i := range keys {
			argv[evalShaHead+i] = &keys[i]
		}
		c.cmd = argv
	}
	return c, nil
}

// commitMem is the memory of a usual commitCall, allocated at once; a
// call with more tasks or timers than its arrays hold makes slices of
// its own for what does not fit.
type commitMem struct {
	args commitArgs
	argv [evalShaHead + 10 + commitArgc + 10]any
	keys [10]string
	vals [8]string
	dues [3]int64
}

// commitKeyc counts commitKeys' fields, commitArgc commitArgs'
// (TestCommitScriptHeader checks both).
const commitKeyc, commitArgc = 7, 30

// evalShaHead is EVALSHA's words before the keys: evalsha, the hash and
// the number of keys.
const evalShaHead = 3

// grow is s (empty) with room for n, s itself when it has it.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s
	}
	return make([]T, 0, n)
}

// bytesString is b as a string without a copy. Only for bytes nothing
// writes to again: the encodings commitCall made for this call.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// stringBytes is s's bytes without a copy, for json.Unmarshal only: it
// reads its input and never writes to it (what it keeps, a RawMessage or
// a string, it copies), and the bytes must not be written to, being a
// string's.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// commitKeys are commit_transition's named KEYS, in order: field i is
// KEYS[i+1], named as the script's header names it (TestCommitScriptHeader
// holds the two to the same names and order). The task streams of the
// scheduled, cancelled and open tasks follow them.
type commitKeys struct {
	InstKey, HistKey, WorkKey, TimersKey, FinishedKey, AckTaskKey, CountsKey string
}

// keys lists the fields in order, with room for extra more.
func (k *commitKeys) keys(extra int) []string {
	return k.appendTo(make([]string, 0, commitKeyc+extra))
}

// appendTo appends the fields in order to dst.
func (k *commitKeys) appendTo(dst []string) []string {
	return append(dst, k.InstKey, k.HistKey, k.WorkKey, k.TimersKey, k.FinishedKey, k.AckTaskKey, k.CountsKey)
}

// commitArgs are commit_transition's named ARGV, in order: field i is
// ARGV[i+1], named as the script's header names it (TestCommitScriptHeader
// holds the two to the same names and order); the script's header says
// what each means. The tasks, timer adds and timer removes follow them.
type commitArgs struct {
	WorkGroup     string
	WorkID        string
	FromRev       int64
	NewRev        int64
	Status        string
	Meta          string
	Output        string
	CustomStatus  string
	Runtime       string
	HistoryMax    int
	StatusChannel string
	StatusChange  string
	NTasks        int
	NTimerAdds    int
	NTimerRemoves int
	HistoryEntry  string
	FinishedAt    string // unix ms, or ""
	InstanceID    string
	CreatedAt     int64
	TaskGroup     string
	AckTaskID     string
	AckTaskName   string
	NCancels      int
	// WithdrawnChannel gets WithdrawnNotice (a withdrawal's JSON, "" for
	// none) when a cancelled task was held by a consumer.
	WithdrawnChannel string
	WithdrawnNotice  string
	Ends             string // "1" or ""
	NOpen            int
	Workflow         string // the instance's workflow name, for the counts
	RunInput         string // after a continueAsNew: the new run's input JSON; "" = none
	Message          int64  // the client message applied straight from the API; 0 = none
}

// runInput is what commitArgs.RunInput says for t: the new run's input
// when t continued the instance as new.
func runInput(t *interpreter.Transition) string {
	for _, h := range t.History {
		if h.Type == "ContinuedAsNew" {
			if len(t.State.Input) == 0 {
				return "null"
			}
			return string(t.State.Input)
		}
	}
	return ""
}

// appendRefs appends pointers to the fields in order to dst: go-redis
// writes a *string, *int or *int64 as the value it points to, and a
// pointer goes into an interface without the allocation each string or
// number would cost. The list is the one place that orders the fields;
// argv reads it.
func (a *commitArgs) appendRefs(dst []any) []any {
	return append(dst,
		&a.WorkGroup, &a.WorkID, &a.FromRev, &a.NewRev,
		&a.Status, &a.Meta, &a.Output, &a.CustomStatus, &a.Runtime,
		&a.HistoryMax, &a.StatusChannel, &a.StatusChange,
		&a.NTasks, &a.NTimerAdds, &a.NTimerRemoves,
		&a.HistoryEntry, &a.FinishedAt, &a.InstanceID, &a.CreatedAt,
		&a.TaskGroup, &a.AckTaskID, &a.AckTaskName,
		&a.NCancels, &a.WithdrawnChannel, &a.WithdrawnNotice, &a.Ends, &a.NOpen,
		&a.Workflow, &a.RunInput, &a.Message,
	)
}

// argv lists the fields' values in order, with room for extra more.
func (a *commitArgs) argv(extra int) []any {
	out := a.appendRefs(make([]any, 0, commitArgc+extra))
	for i, r := range out {
		out[i] = deref(r)
	}
	return out
}

// deref is the value a refs pointer points to.
func deref(r any) any {
	switch r := r.(type) {
	case *string:
		return *r
	case *int:
		return *r
	case *int64:
		return *r
	}
	return r
}

// withdrawal is the notice a commit publishes on its partition's withdrawn
// channel when it withdraws tasks a consumer holds (WatchWithdrawn).
type withdrawal struct {
	Instance interpreter.InstanceID `json:"i"`
	Tasks    []string               `json:"t"` // task ids
}

// suspendsOrResumes reports whether the transition suspends or resumes the
// instance: the interpreter records either as the first history line of
// the transition (bounded keeps the first lines), and only then does the
// commit need the instance's open tasks (to park or requeue them).
func suspendsOrResumes(t *interpreter.Transition) bool {
	for _, h := range t.History {
		if h.Type == "ExecutionSuspended" || h.Type == "ExecutionResumed" {
			return true
		}
	}
	return false
}

// openTask is a scheduled task an instance waits for.
type openTask struct{ TaskID, Queue string }

// openTasks lists the tasks the instance's threads wait for. A pending
// activity written before Pending had its queue cannot be found; it is
// left out (it is handed out even while suspended, as before).
func openTasks(st *interpreter.State) []openTask {
	var out []openTask
	add := func(p *interpreter.Pending) {
		if p != nil && p.Kind == interpreter.WaitActivity && p.TaskID != "" && p.Queue != "" {
			out = append(out, openTask{p.TaskID, p.Queue})
		}
	}
	add(st.Pending)
	for i := range st.Threads {
		add(st.Threads[i].Pending)
	}
	return out
}

// queueOf is the task queue name, LocalQueue when unset.
func queueOf(q string) string {
	if q == "" {
		return interpreter.LocalQueue
	}
	return q
}

// AckWork acknowledges and deletes work items that need no transition. One
// round trip.
func (s *Store) AckWork(ctx context.Context, items []interpreter.WorkItem) (err error) {
	defer classify(ctx, &err)
	if len(items) == 0 {
		return nil
	}
	_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			st := s.k.work(it.Partition)
			p.XAck(ctx, st, groupEngine, it.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: acknowledging work: %w", err)
	}
	return nil
}

// TrimWork removes the partition's acknowledged work items from its
// stream in bulk and returns how many went. Commits only acknowledge, so
// an engine calls this every few seconds instead of paying one XDEL per
// transition. One round trip.
func (s *Store) TrimWork(ctx context.Context, partition int) (_ int, err error) {
	defer classify(ctx, &err)
	n, err := s.runScript(ctx, trimWorkCmd, []string{s.k.work(partition)}, groupEngine).Int()
	if err != nil {
		return 0, fmt.Errorf("redisstore: trimming work: %w", err)
	}
	return n, nil
}

// FireDueTimers moves up to max timers due at or before now, earliest
// first, from the partition's timers to its work stream. It returns how
// many moved and the due time of the next one (zero when none). One round
// trip.
func (s *Store) FireDueTimers(ctx context.Context, partition int, now time.Time, max int) (_ int, _ time.Time, err error) {
	defer classify(ctx, &err)
	vals, err := s.runScript(ctx, fireTimersCmd,
		[]string{s.k.timers(partition), s.k.work(partition)},
		ms(now), max, string(interpreter.EvTimer), now.UTC().Format(time.RFC3339Nano),
	).Int64Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redisstore: firing timers: %w", err)
	}
	if len(vals) != 2 {
		return 0, time.Time{}, fmt.Errorf("redisstore: firing timers: unexpected reply %v", vals)
	}
	var next time.Time
	if vals[1] >= 0 {
		next = fromMS(vals[1])
	}
	return int(vals[0]), next, nil
}

// LoadDefinition returns the YAML source stored under name and hash;
// ErrNotFound when there is none. One round trip.
func (s *Store) LoadDefinition(ctx context.Context, name, hash string) (_ []byte, err error) {
	defer classify(ctx, &err)
	if !validHash(hash) {
		return nil, fmt.Errorf("definition %s@%s: %w", name, hash, interpreter.ErrNotFound)
	}
	src, err := s.client.HGet(ctx, s.k.def(name), hash).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("definition %s@%s: %w", name, hash, interpreter.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: loading definition: %w", err)
	}
	return src, nil
}

// validHash reports whether a content hash cannot be mistaken for another
// field of the definition hash.
func validHash(h string) bool {
	return h != "" && h != fLatest && !strings.HasPrefix(h, fCreatedPref)
}
