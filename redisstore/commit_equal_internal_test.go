package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// TestCommitCallIsReference: commitCall, with its memory allocated at once
// and its keys cached, builds for varied transitions the very keys and
// arguments (so the very Redis data) that it built before
// (commitCallReference, on keys formatted per call), and evalSha sends
// them as the EVALSHA command go-redis's Script.EvalSha would.
func TestCommitCallIsReference(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	start, offer := ReserveTicketTransitions("bench-1", 1, at)
	var cases []*interpreter.Transition
	cases = append(cases, start, offer)

	// A task's outcome, acknowledged as a task rather than a work item,
	// that cancels tasks and ends the instance with an output.
	done := *offer
	st := *offer.State
	st.Status, st.Output = interpreter.StatusCompleted, json.RawMessage(`{"ok":true,"<&>":"x"}`)
	done.State, done.WorkID = &st, ""
	done.TaskAck = &TaskRef{Partition: partitionOf(st.ID, 16), Queue: "", EntryID: "1-1", Instance: st.ID, TaskID: "t1"}
	done.Commands = []interpreter.Command{
		&interpreter.CancelTask{TaskID: "t7", Queue: "gpu"},
		&interpreter.CancelTask{TaskID: "t8"},
		&interpreter.CancelTimer{ID: "t3"},
	}
	cases = append(cases, &done)

	// More tasks and timers than commitMem's arrays hold, on other queues.
	many := *start
	for i := range 6 {
		many.Commands = append(many.Commands,
			&interpreter.ScheduleTask{TaskID: fmt.Sprintf("x%d", i), Instance: start.State.ID, Activity: "A",
				Input: json.RawMessage(`[1,2,3]`), Attempt: i + 1, Queue: fmt.Sprintf("q%d", i%3)},
			&interpreter.StartTimer{ID: fmt.Sprintf("w%d", i), Due: at.Add(time.Duration(i) * time.Second)},
			&interpreter.CancelTimer{ID: fmt.Sprintf("c%d", i)},
			&interpreter.CancelTask{TaskID: fmt.Sprintf("k%d", i), Queue: "q1"})
	}
	cases = append(cases, &many)

	// A suspension: the open tasks of the instance and its threads.
	susp := *start
	sst := *start.State
	sst.Status = interpreter.StatusSuspended
	sst.Threads = []interpreter.Thread{{ID: "fan/0", Pending: &interpreter.Pending{Kind: interpreter.WaitActivity, TaskID: "t9", Queue: "gpu"}}}
	susp.State, susp.StatusChanged, susp.Commands = &sst, false, nil
	susp.History = []interpreter.HistoryEvent{{Type: "ExecutionSuspended", Timestamp: at, Reason: "maintenance"}}
	cases = append(cases, &susp)

	// A continueAsNew: the new run's input.
	cont := *offer
	cst := *offer.State
	cst.Generation, cst.Input = 2, json.RawMessage(`{"again":"<yes>"}`)
	cont.State = &cst
	cont.History = append([]interpreter.HistoryEvent{{Type: "ContinuedAsNew", Timestamp: at}}, offer.History...)
	cases = append(cases, &cont)

	// Bad JSON somewhere: both refuse.
	bad := *offer
	bst := *offer.State
	bst.CustomStatus = json.RawMessage(`{"a":`)
	bad.State = &bst
	cases = append(cases, &bad)

	for _, opts := range []Options{
		{},
		{Partitions: 3, HistoryMax: -1, Prefix: "x:", Retention: Retention{MaxAge: time.Hour}},
	} {
		client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
		defer client.Close()
		s, ref := New(client, opts), New(client, opts)
		ref.k = newKeys(opts.Prefix) // formatted per call
		for i, tr := range cases {
			name := fmt.Sprintf("%+v/%d", opts, i)
			got, gerr := s.commitCall(tr)
			want, werr := ref.commitCallReference(tr)
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("%s: commitCall error %v, reference %v", name, gerr, werr)
			}
			if gerr != nil {
				continue
			}
			if got.script != want.script || !reflect.DeepEqual(got.keys, want.keys) {
				t.Errorf("%s: keys\n%q\nwant\n%q", name, got.keys, want.keys)
			}
			if args := derefAll(got.args); !reflect.DeepEqual(args, want.args) {
				t.Errorf("%s: args\n%q\nwant\n%q", name, args, want.args)
			}
			if got.cmd == nil {
				t.Errorf("%s: commitCall made no EVALSHA command", name)
			}
			p := client.Pipeline()
			cmd := evalSha(context.Background(), p, got)
			wantCmd := want.script.EvalSha(context.Background(), client.Pipeline(), want.keys, want.args...)
			if a, w := derefAll(cmd.Args()), wantCmd.Args(); !reflect.DeepEqual(a, w) {
				t.Errorf("%s: EVALSHA\n%q\nwant\n%q", name, a, w)
			}
		}
	}
}

func derefAll(rs []any) []any {
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = deref(r)
	}
	return out
}

// TestCachedKeysAreFormatted: the keys a Store caches per partition are
// the ones formatted per call, and partitionOf is fnv32a.
func TestCachedKeysAreFormatted(t *testing.T) {
	plain := newKeys("pre")
	cached := plain.forPartitions(5)
	id := interpreter.InstanceID("inst-ü-1")
	for p := range 7 { // 5 and 6 are past the cache
		for _, c := range [][2]string{
			{cached.part(p), plain.prefix + "{" + strconv.Itoa(p) + "}:"},
			{cached.work(p), plain.part(p) + "work"},
			{cached.timers(p), plain.part(p) + "timers"},
			{cached.finished(p), plain.part(p) + "finished"},
			{cached.counts(p), plain.part(p) + "counts"},
			{cached.withdrawn(p), plain.part(p) + "withdrawn"},
			{cached.tasks(p, interpreter.LocalQueue), plain.part(p) + "tasks:" + interpreter.LocalQueue},
			{cached.tasks(p, "gpu"), plain.part(p) + "tasks:gpu"},
			{cached.inst(p, id), plain.part(p) + "inst:" + string(id)},
			{cached.hist(p, id), plain.part(p) + "log:" + string(id)},
			{cached.status(p, id), plain.part(p) + "status:" + string(id)},
		} {
			if c[0] != c[1] {
				t.Errorf("partition %d: %q, want %q", p, c[0], c[1])
			}
		}
		for _, k := range []keys{plain, cached} {
			i, h, s := k.instKeys(p, id)
			if i != k.inst(p, id) || h != k.hist(p, id) || s != k.status(p, id) {
				t.Errorf("instKeys(%d) = %q %q %q", p, i, h, s)
			}
		}
	}
	if got := string(appendTimerMember(nil, id, "t3")); got != timerMember(id, "t3") {
		t.Errorf("appendTimerMember = %q, timerMember %q", got, timerMember(id, "t3"))
	}
	for i := range 1000 {
		id := interpreter.InstanceID(fmt.Sprintf("id-%d-%x", i, i*7919))
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		for _, n := range []int{1, 16, 7, 1000} {
			if got, want := partitionOf(id, n), int(h.Sum32()%uint32(n)); got != want {
				t.Fatalf("partitionOf(%q, %d) = %d, fnv32a %d", id, n, got, want)
			}
		}
	}
}

// TestCommitArgCounts: commitKeyc and commitArgc count the fields.
func TestCommitArgCounts(t *testing.T) {
	if n := reflect.TypeOf(commitKeys{}).NumField(); n != commitKeyc {
		t.Errorf("commitKeys has %d fields, commitKeyc is %d", n, commitKeyc)
	}
	if n := reflect.TypeOf(commitArgs{}).NumField(); n != commitArgc {
		t.Errorf("commitArgs has %d fields, commitArgc is %d", n, commitArgc)
	}
	var a commitArgs
	if n := len(a.appendRefs(nil)); n != commitArgc {
		t.Errorf("appendRefs lists %d fields, commitArgc is %d", n, commitArgc)
	}
}

func (s *Store) commitCallReference(t *interpreter.Transition) (scriptCall, error) {
	st := t.State
	if st == nil {
		return scriptCall{}, errors.New("redisstore: commit: transition without state")
	}
	p := s.partition(st.ID)
	metaJSON, rtJSON, err := stateFields(st)
	if err != nil {
		return scriptCall{}, fmt.Errorf("redisstore: commit %s: %w", st.ID, err)
	}
	newRev := t.FromRevision + 1
	var change []byte
	if t.StatusChanged {
		change, err = appendStatusChange(make([]byte, 0, 128+len(st.CustomStatus)+len(st.Output)), &interpreter.StatusChange{
			Instance: st.ID, Status: st.Status, CustomStatus: st.CustomStatus,
			Output: st.Output, Revision: newRev, Time: st.LastUpdatedTime,
		})
		if err != nil {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: %w", st.ID, err)
		}
	}
	work := s.k.work(p)
	k := commitKeys{InstKey: s.k.inst(p, st.ID), HistKey: s.k.hist(p, st.ID), WorkKey: work,
		TimersKey: s.k.timers(p), FinishedKey: s.k.finished(p), AckTaskKey: work, CountsKey: s.k.counts(p)}
	ackTask, ackName := "", ""
	if a := t.TaskAck; a != nil {
		if t.WorkID != "" {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: a transition consumes a work item or a task, not both", st.ID)
		}
		if err := s.validRef(*a); err != nil || a.Instance != st.ID {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: task %s is not this instance's", st.ID, a.TaskID)
		}
		k.AckTaskKey, ackTask, ackName = s.k.tasks(p, queueOf(a.Queue)), a.EntryID, a.TaskID
	}
	// The variable part is gathered as values first, then handed to
	// go-redis as pointers to them (see commitArgs.refs): vals holds the
	// strings, dues the timers' due times, both sized up front so that no
	// pointer outlives a growth.
	var nTasks, nAdds, nRems, nCancels int
	for _, c := range t.Commands {
		switch c.(type) {
		case *interpreter.ScheduleTask:
			nTasks++
		case *interpreter.CancelTask:
			nCancels++
		case *interpreter.StartTimer:
			nAdds++
		case *interpreter.CancelTimer:
			nRems++
		default:
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: unknown command %T", st.ID, c)
		}
	}
	var open []openTask
	if suspendsOrResumes(t) {
		open = openTasks(st)
	}
	keys := k.keys(nTasks + nCancels + len(open)) // then a task stream per task, cancel and open task
	vals := make([]string, 2*nTasks+nAdds+nRems+nCancels+len(open))
	dues := make([]int64, nAdds)
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
			b, err := appendTask(make([]byte, 0, 256+len(c.Input)), c)
			if err != nil {
				return scriptCall{}, fmt.Errorf("redisstore: commit %s: task: %w", st.ID, err)
			}
			keys = append(keys, s.k.tasks(p, queueOf(c.Queue)))
			vals[ti], vals[ti+1] = bytesString(b), c.TaskID
			ti += 2
		case *interpreter.CancelTask:
			cancelKeys = append(cancelKeys, s.k.tasks(p, queueOf(c.Queue)))
			vals[ci] = c.TaskID
			ci++
			withdrawn = append(withdrawn, c.TaskID)
		case *interpreter.StartTimer:
			dues[di], vals[ai] = ms(c.Due), timerMember(st.ID, c.ID)
			di++
			ai++
		case *interpreter.CancelTimer:
			vals[ri] = timerMember(st.ID, c.ID)
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
	var hist string
	if s.histMax > 0 && len(t.History) > 0 {
		if hist, err = encodeHistory(t.History); err != nil {
			return scriptCall{}, fmt.Errorf("redisstore: commit %s: history: %w", st.ID, err)
		}
	}
	ends := ""
	if st.Status.Terminal() {
		ends = "1"
	}
	finished := ""
	if s.retain.enabled() && t.StatusChanged && st.Status.Terminal() {
		finished = strconv.FormatInt(ms(st.LastUpdatedTime), 10)
	}
	a := &commitArgs{
		WorkGroup: groupEngine, WorkID: t.WorkID, FromRev: t.FromRevision, NewRev: newRev,
		Status: string(st.Status), Meta: bytesString(metaJSON), Output: raw(st.Output), CustomStatus: raw(st.CustomStatus),
		Runtime:    bytesString(rtJSON),
		HistoryMax: s.histMax, StatusChannel: s.k.status(p, st.ID), StatusChange: bytesString(change),
		NTasks: nTasks, NTimerAdds: nAdds, NTimerRemoves: nRems,
		HistoryEntry: hist, FinishedAt: finished, InstanceID: string(st.ID), CreatedAt: ms(st.CreatedTime),
		TaskGroup: groupWorkers, AckTaskID: ackTask, AckTaskName: ackName,
		NCancels: nCancels, WithdrawnChannel: s.k.withdrawn(p), WithdrawnNotice: bytesString(notice),
		Ends: ends, NOpen: len(open), Workflow: st.Name, RunInput: runInput(t),
	}
	args := a.argv(len(vals) + len(dues))
	for i := range 2 * nTasks {
		args = append(args, vals[i])
	}
	for i := range dues {
		args = append(args, dues[i], vals[2*nTasks+i])
	}
	for i := 2*nTasks + nAdds; i < len(vals); i++ {
		args = append(args, vals[i])
	}
	return scriptCall{script: commitTransitionCmd, keys: keys, args: args}, nil
}
