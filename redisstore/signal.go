package redisstore

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

//go:embed scripts/signal_with_start.lua
var signalWithStartSrc string

var signalWithStartCmd = redis.NewScript(signalWithStartSrc)

func init() { allScripts = append(allScripts, signalWithStartCmd) }

// codeDelivered: signal_with_start queued the event for the unfinished
// instance that has the id (it started none).
const codeDelivered = 9

// SignalWithStart raises the event name (data) into instance n.State.ID,
// first starting n when no unfinished instance has that id (a finished one
// is replaced, as CreateInstance does), in one step: of two concurrent
// calls one starts the instance, and both events are queued, the start
// first. started reports whether this call started it. One round trip.
func (s *Store) SignalWithStart(ctx context.Context, n interpreter.NewInstance, name string, data json.RawMessage) (started bool, err error) {
	defer classify(ctx, &err)
	keys, args, err := s.createCall(n)
	if err != nil {
		return false, err
	}
	ev, err := json.Marshal(interpreter.Event{Kind: interpreter.EvRaised, Time: n.Start.Time, Name: name, Data: data})
	if err != nil {
		return false, fmt.Errorf("redisstore: signal with start %s: %w", n.State.ID, err)
	}
	args = append(append(args, ev), terminalStatuses...)
	code, err := s.runScript(ctx, signalWithStartCmd, keys, args...).Int64()
	switch {
	case err != nil:
		return false, fmt.Errorf("redisstore: signal with start %s: %w", n.State.ID, err)
	case code == codeDelivered:
		return false, nil
	}
	return code == codeOK, codeErr(code)
}
