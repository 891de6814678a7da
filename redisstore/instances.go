package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// This file is the client side used by the HTTP API: starting, messaging,
// reading and purging instances.

// historyScheduled is the history line CreateInstance writes; the
// interpreter writes ExecutionStarted when the engine takes the start item.
const historyScheduled = "ExecutionScheduled"

// CreateInstance writes a new instance (State, normally Pending at revision
// 0) and queues its start work item. An instance with that id that is
// finished is replaced, its history dropped; one that is Pending, Running
// or Suspended is not: ErrAlreadyRunning. One round trip.
func (s *Store) CreateInstance(ctx context.Context, n interpreter.NewInstance) (err error) {
	defer classify(ctx, &err)
	if n.First != nil {
		return s.createStarted(ctx, n)
	}
	return s.createWith(ctx, n, createInstanceCmd)
}

// createStarted writes n as its first transition leaves it: the
// transition's commit_transition call, with create_instance's part after
// it (see the script's header). No start work item is written, and one
// script does it all, in one round trip.
func (s *Store) createStarted(ctx context.Context, n interpreter.NewInstance) error {
	st, t := n.State, n.First
	if st == nil || t.State == nil || t.State.ID != st.ID || t.FromRevision != 0 || t.WorkID != "" || t.TaskAck != nil {
		return errors.New("redisstore: create instance: the first transition is not the new instance's start")
	}
	if err := checkID(st.ID); err != nil {
		return err
	}
	c, err := s.commitCall(t)
	if err != nil {
		return err
	}
	line, err := scheduledLine(n)
	if err != nil {
		return err
	}
	keys := append(c.keys, s.k.index(s.partition(st.ID)))
	args := append(c.args, raw(st.Input), line)
	args = append(args, terminalStatuses...)
	if err := s.runCode(ctx, "create instance", commitTransitionCmd, keys, args...); err != nil {
		return err
	}
	t.State.Revision = 1
	return nil
}

// scheduledLine is the first history entry of n: the workflow scheduled.
func scheduledLine(n interpreter.NewInstance) (string, error) {
	line, err := encodeHistory([]interpreter.HistoryEvent{{Type: historyScheduled, Timestamp: n.Start.Time, Name: n.State.Name}})
	if err != nil {
		return "", fmt.Errorf("redisstore: create instance %s: %w", n.State.ID, err)
	}
	return line, nil
}

// createWith runs create_instance, or a script that takes its KEYS and
// ARGV (create_instance_once, schedules.go).
func (s *Store) createWith(ctx context.Context, n interpreter.NewInstance, script *redis.Script) error {
	keys, args, err := s.createCall(n)
	if err != nil {
		return err
	}
	return s.runCode(ctx, "create instance", script, keys, append(args, terminalStatuses...)...)
}

// createCall is create_instance's KEYS and ARGV[1..11] for n (the
// terminal status names, which follow, are the caller's to add).
func (s *Store) createCall(n interpreter.NewInstance) (keys []string, args []any, err error) {
	st := n.State
	if st == nil {
		return nil, nil, errors.New("redisstore: create instance: no state")
	}
	if err := checkID(st.ID); err != nil {
		return nil, nil, err
	}
	metaJSON, rtJSON, err := stateFields(st)
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: create instance %s: %w", st.ID, err)
	}
	// The start item carries the new state, so the engine need not load it.
	ev := n.Start
	ev.Init = &interpreter.StartInfo{Name: st.Name, DefHash: st.DefHash, Input: st.Input, Parent: st.Parent, Trace: st.TraceParent}
	start, err := json.Marshal(ev)
	if err != nil {
		return nil, nil, fmt.Errorf("redisstore: create instance %s: %w", st.ID, err)
	}
	line, err := scheduledLine(n)
	if err != nil {
		return nil, nil, err
	}
	p := s.partition(st.ID)
	keys = []string{s.k.inst(p, st.ID), s.k.hist(p, st.ID), s.k.index(p), s.k.work(p), s.k.finished(p), s.k.counts(p)}
	args = make([]any, 0, 12+len(terminalStatuses))
	args = append(args,
		string(st.ID), string(st.Status), st.Revision, metaJSON, raw(st.Input), rtJSON,
		ms(st.CreatedTime), start, s.histMax, line, st.Name)
	return keys, args, nil
}

// checkID refuses ids the key layout cannot hold: empty, or with control
// characters (timer members use "\n" as a separator).
func checkID(id interpreter.InstanceID) error {
	if id == "" {
		return errors.New("redisstore: empty instance id")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("redisstore: instance id %q has a control character", id)
		}
	}
	return nil
}

// RaiseEvent queues an external event for the instance: ErrNotFound when
// there is none, ErrFinished when it is finished. One round trip.
func (s *Store) RaiseEvent(ctx context.Context, id interpreter.InstanceID, name string, data json.RawMessage, now time.Time) (err error) {
	defer classify(ctx, &err)
	return s.enqueue(ctx, id, interpreter.Event{Kind: interpreter.EvRaised, Time: now, Name: name, Data: data})
}

// SendControl queues a terminate, suspend or resume message (ev.Kind) for
// the instance: ErrNotFound, ErrFinished as RaiseEvent. One round trip.
func (s *Store) SendControl(ctx context.Context, id interpreter.InstanceID, ev interpreter.Event) (err error) {
	defer classify(ctx, &err)
	switch ev.Kind {
	case interpreter.EvTerminate, interpreter.EvSuspend, interpreter.EvResume:
	default:
		return fmt.Errorf("redisstore: %q is not a control message", ev.Kind)
	}
	return s.enqueue(ctx, id, ev)
}

func (s *Store) enqueue(ctx context.Context, id interpreter.InstanceID, ev interpreter.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("redisstore: %s %s: %w", ev.Kind, id, err)
	}
	p := s.partition(id)
	if err := s.runCode(ctx, string(ev.Kind), enqueueEventCmd,
		[]string{s.k.inst(p, id), s.k.work(p)},
		append([]any{string(id), b}, terminalStatuses...)...); err != nil {
		return fmt.Errorf("instance %s: %w", id, err)
	}
	return nil
}

// FetchHistory returns the instance's retained history, oldest first;
// ErrNotFound when there is no such instance. One round trip.
func (s *Store) FetchHistory(ctx context.Context, id interpreter.InstanceID) (_ []interpreter.HistoryEvent, err error) {
	defer classify(ctx, &err)
	p := s.partition(id)
	var exists *redis.IntCmd
	var rng *redis.StringSliceCmd
	if _, err := s.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		exists = pl.Exists(ctx, s.k.inst(p, id))
		rng = pl.LRange(ctx, s.k.hist(p, id), 0, -1)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("redisstore: fetching history: %w", err)
	}
	if exists.Val() == 0 {
		return nil, fmt.Errorf("instance %s: %w", id, interpreter.ErrNotFound)
	}
	out := make([]interpreter.HistoryEvent, 0, 2*len(rng.Val()))
	for i, entry := range rng.Val() {
		var err error
		if out, err = decodeHistory(out, entry); err != nil {
			return nil, fmt.Errorf("redisstore: instance %s: history entry %d: %w", id, i, err)
		}
	}
	return out, nil
}

// Purge deletes a finished instance and its history: ErrNotFound when there
// is none, ErrAlreadyRunning when it is not finished. One round trip.
func (s *Store) Purge(ctx context.Context, id interpreter.InstanceID) (err error) {
	defer classify(ctx, &err)
	p := s.partition(id)
	if err := s.runCode(ctx, "purge", purgeInstanceCmd,
		[]string{s.k.inst(p, id), s.k.hist(p, id), s.k.index(p), s.k.finished(p), s.k.counts(p)},
		append([]any{string(id)}, terminalStatuses...)...); err != nil {
		return fmt.Errorf("instance %s: %w", id, err)
	}
	return nil
}

// WatchStatus subscribes to the instance's status changes (each commit that
// changes its runtime or custom status publishes one). The channel closes
// when ctx ends or stop is called; stop returns once it is closed.
// Subscribe before reading the current status, so no change falls between.
// Notices sent while the receiver lags far behind may be lost, as with any
// Redis pub/sub. One round trip.
func (s *Store) WatchStatus(ctx context.Context, id interpreter.InstanceID) (_ <-chan interpreter.StatusChange, _ func(), err error) {
	defer classify(ctx, &err)
	ps := s.client.Subscribe(ctx, s.k.status(s.partition(id), id))
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, nil, fmt.Errorf("redisstore: watching %s: %w", id, err)
	}
	out := make(chan interpreter.StatusChange, 16)
	done, exited := make(chan struct{}), make(chan struct{})
	msgs := s.statusFollower(ctx, done, ps, id) // failover.go
	var once sync.Once
	stop := func() {
		once.Do(func() { close(done) })
		<-exited
	}
	go func() {
		defer close(exited)
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				var c interpreter.StatusChange
				if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
					s.log.Error("redisstore: bad status notice", "instance", id, "err", err)
					continue
				}
				select {
				case out <- c:
				case <-done:
					return
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, stop, nil
}
