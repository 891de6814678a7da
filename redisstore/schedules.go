package redisstore

// This file keeps the state of schedules (interpreter.ScheduleStore): one
// hash of every schedule's state, moved by compare-and-set, and the
// create-once start of a tick's instance.

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

var (
	//go:embed scripts/save_schedule.lua
	saveScheduleSrc string
	saveScheduleCmd = redis.NewScript(saveScheduleSrc)

	// createInstanceOnceCmd is create_instance behind a guard that refuses
	// any instance of the id, finished ones too (code 5), so a tick's
	// instance is created once however often it is tried; it takes
	// create_instance's KEYS and ARGV, and does what it does otherwise.
	createInstanceOnceCmd = redis.NewScript(
		"-- create_instance_once: create_instance, refusing an id that exists at all.\n" +
			"if redis.call('EXISTS', KEYS[1]) == 1 then return 5 end\n" + createInstanceSrc)
)

var _ interpreter.ScheduleStore = (*Store)(nil)

// CreateInstanceOnce writes a new instance as CreateInstance does, unless an
// instance of that id exists, running or finished: interpreter.ErrExists.
// One round trip. (A finished instance purged or expired no longer counts;
// by then the schedule's state has long moved past its tick.)
func (s *Store) CreateInstanceOnce(ctx context.Context, n interpreter.NewInstance) (err error) {
	defer classify(ctx, &err)
	err = s.createWith(ctx, n, createInstanceOnceCmd)
	if errors.Is(err, interpreter.ErrFinished) || errors.Is(err, interpreter.ErrAlreadyRunning) {
		return fmt.Errorf("redisstore: instance %s: %w", n.State.ID, interpreter.ErrExists)
	}
	return err
}

// LoadScheduleStates reads every stored schedule state. One round trip.
func (s *Store) LoadScheduleStates(ctx context.Context) (_ map[string]*interpreter.ScheduleState, err error) {
	defer classify(ctx, &err)
	all, err := s.client.HGetAll(ctx, s.k.schedules()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: loading schedule states: %w", err)
	}
	out := make(map[string]*interpreter.ScheduleState, len(all))
	for id, v := range all {
		var st interpreter.ScheduleState
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return nil, fmt.Errorf("redisstore: the state of schedule %s is not JSON: %w", id, err)
		}
		out[id] = &st
	}
	return out, nil
}

// SaveScheduleState stores st as revision st.Rev+1 if the stored revision
// is st.Rev (0: none stored), else interpreter.ErrConflict; on success
// st.Rev is the new revision. One round trip.
func (s *Store) SaveScheduleState(ctx context.Context, st *interpreter.ScheduleState) (err error) {
	defer classify(ctx, &err)
	next := *st
	next.Rev = st.Rev + 1
	b, err := json.Marshal(&next)
	if err != nil {
		return fmt.Errorf("redisstore: schedule %s: %w", st.ID, err)
	}
	if err := s.runCode(ctx, "save schedule", saveScheduleCmd, []string{s.k.schedules()}, st.ID, st.Rev, b); err != nil {
		return err
	}
	st.Rev = next.Rev
	return nil
}
