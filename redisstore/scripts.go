package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// One script per transition; each file starts with its KEYS/ARGV/returns
// contract.
var (
	//go:embed scripts/create_instance.lua
	createInstanceSrc string
	//go:embed scripts/commit_transition.lua
	commitTransitionSrc string
	//go:embed scripts/enqueue_event.lua
	enqueueEventSrc string
	//go:embed scripts/fire_timers.lua
	fireTimersSrc string
	//go:embed scripts/finish_task.lua
	finishTaskSrc string
	//go:embed scripts/extend_task.lua
	extendTaskSrc string
	//go:embed scripts/purge_instance.lua
	purgeInstanceSrc string
	//go:embed scripts/purge_many.lua
	purgeManySrc string
	//go:embed scripts/page_index.lua
	pageIndexSrc string
	//go:embed scripts/describe_definition.lua
	describeDefinitionSrc string
	//go:embed scripts/trim_work.lua
	trimWorkSrc string
	//go:embed scripts/expire_finished.lua
	expireFinishedSrc string
	//go:embed scripts/recount_instances.lua
	recountInstancesSrc string
)

var (
	createInstanceCmd     = redis.NewScript(createInstanceSrc)
	commitTransitionCmd   = redis.NewScript(commitTransitionSrc)
	enqueueEventCmd       = redis.NewScript(enqueueEventSrc)
	fireTimersCmd         = redis.NewScript(fireTimersSrc)
	finishTaskCmd         = redis.NewScript(finishTaskSrc)
	extendTaskCmd         = redis.NewScript(extendTaskSrc)
	purgeInstanceCmd      = redis.NewScript(purgeInstanceSrc)
	purgeManyCmd          = redis.NewScript(purgeManySrc)
	pageIndexCmd          = redis.NewScript(pageIndexSrc)
	describeDefinitionCmd = redis.NewScript(describeDefinitionSrc)
	trimWorkCmd           = redis.NewScript(trimWorkSrc)
	expireFinishedCmd     = redis.NewScript(expireFinishedSrc)
	recountInstancesCmd   = redis.NewScript(recountInstancesSrc)

	allScripts = []*redis.Script{
		createInstanceCmd, commitTransitionCmd, enqueueEventCmd, fireTimersCmd,
		finishTaskCmd, extendTaskCmd, purgeInstanceCmd, purgeManyCmd,
		pageIndexCmd, describeDefinitionCmd, trimWorkCmd, expireFinishedCmd,
		recountInstancesCmd,
	}
)

// Result codes of the scripts, shared by all of them.
const (
	codeOK             = 0
	codeNotFound       = 1 // no such instance
	codeConflict       = 2 // the revision moved
	codeDuplicate      = 3 // work item or task already acknowledged
	codeAlreadyRunning = 4 // an unfinished instance has this id
	codeFinished       = 5 // the instance is finished
	codeGone           = 6 // commit: the instance was purged since it was loaded
	codeNotFinished    = 7 // purge: the instance still runs
	codeInstanceEnded  = 8 // a task's instance has ended or is gone
)

// codeErr maps a script result code to the sentinel error callers test
// with errors.Is. It is the only place codes become errors.
func codeErr(code int64) error {
	switch code {
	case codeOK:
		return nil
	case codeNotFound:
		return interpreter.ErrNotFound
	case codeConflict:
		return interpreter.ErrConflict
	case codeDuplicate:
		return interpreter.ErrDuplicate
	case codeAlreadyRunning:
		return interpreter.ErrAlreadyRunning
	case codeFinished:
		return interpreter.ErrFinished
	case codeGone:
		return fmt.Errorf("instance no longer exists: %w", interpreter.ErrConflict)
	case codeNotFinished:
		return fmt.Errorf("instance not finished: %w", interpreter.ErrAlreadyRunning)
	case codeInstanceEnded:
		return interpreter.ErrInstanceFinished
	}
	return fmt.Errorf("redisstore: script returned unknown code %d", code)
}

// scriptCall is one script invocation in a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	// cmd, when set, is the call's whole EVALSHA command, built by the
	// caller with args as its tail (commitCall), so that evalSha need not
	// make it.
	cmd []any
}

// runScripts runs the calls in one pipeline of EVALSHA (one round trip).
// Calls that fail with NOSCRIPT (the server's script cache was flushed, e.g.
// by a restart) are run again with EVAL in a second pipeline; they wrote
// nothing the first time. Per-call errors are left in the returned
// commands; the error is for the pipeline as a whole (network, context).
// Under DurabilityReplica, calls that write what a caller is told about
// are followed by WAIT (durability.go).
func (s *Store) runScripts(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	if s.repl != nil && slices.ContainsFunc(calls, func(c scriptCall) bool { return ackedScripts[c.script] }) {
		return s.runReplicated(ctx, calls)
	}
	cmds, _, err := pipeScripts(ctx, s.client, calls, nil)
	return cmds, err
}

// pipeScripts is runScripts on c. A non-nil wait (a WAIT) ends the
// pipeline, and the NOSCRIPT pipeline too when there is one; the WAITs
// sent are returned.
func pipeScripts(ctx context.Context, c pipeliner, calls []scriptCall, wait *redis.IntCmd) ([]*redis.Cmd, []*redis.IntCmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	var waits []*redis.IntCmd
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = evalSha(ctx, p, c)
		}
		if wait != nil {
			_ = p.Process(ctx, wait)
			waits = append(waits, wait)
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return nil, nil, err
	}
	var again []int
	for i, c := range cmds {
		if isReply(c.Err(), replyNoScript) {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return cmds, waits, nil
	}
	if wait != nil {
		wait = redis.NewIntCmd(ctx, wait.Args()...)
	}
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range again {
			c := calls[i]
			cmds[i] = c.script.Eval(ctx, p, c.keys, c.args...)
		}
		if wait != nil {
			_ = p.Process(ctx, wait)
			waits = append(waits, wait)
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return nil, nil, err
	}
	return cmds, waits, nil
}

// evalSha queues c's EVALSHA on p. It builds the command as go-redis's
// Script.EvalSha does, but with the keys as pointers into c.keys: a string
// put into an interface is an allocation of its own, and a commit has a
// dozen keys. Like go-redis it names the first key's position, which routes
// the command on a cluster.
func evalSha(ctx context.Context, p redis.Pipeliner, c scriptCall) *redis.Cmd {
	args := c.cmd
	if args == nil {
		h := scriptHash(c.script)
		if h == nil {
			return c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		args = make([]any, 3, 3+len(c.keys)+len(c.args))
		args[0], args[1], args[2] = "evalsha", h, len(c.keys)
		for i := range c.keys {
			args = append(args, &c.keys[i])
		}
		args = append(args, c.args...)
	}
	cmd := redis.NewCmd(ctx, args...)
	if len(c.keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	_ = p.Process(ctx, cmd)
	return cmd
}

// scriptHashes holds each script's SHA1, as a pointer for evalSha.
var scriptHashes sync.Map // *redis.Script → *string

// scriptHash is the script's SHA1; nil when go-redis has none yet (a
// script made by NewScriptServerSHA before its first load).
func scriptHash(sc *redis.Script) *string {
	if h, ok := scriptHashes.Load(sc); ok {
		return h.(*string)
	}
	h := sc.Hash()
	if h == "" {
		return nil
	}
	v, _ := scriptHashes.LoadOrStore(sc, &h)
	return v.(*string)
}

// runScript runs one script in one round trip (two after a script cache
// flush) and returns its reply.
//
// A call that finds another in flight (starts and raised events from many
// HTTP clients at once) is batched with it, as concurrent status reads are
// (FetchStatus): go-redis's autopipeliner sends the calls submitted while
// a batch is on the wire together, one write and one read on one
// connection, instead of a round trip each. A call alone goes straight out.
func (s *Store) runScript(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.repl != nil && ackedScripts[sc] {
		cmd, err := s.runOne(ctx, scriptCall{script: sc, keys: keys, args: args})
		if err != nil {
			failed := redis.NewCmd(ctx)
			failed.SetErr(err)
			return failed
		}
		return cmd
	}
	company := s.scriptCalls.Add(1) > 1
	defer s.scriptCalls.Add(-1)
	if c, ok := s.client.(autoPipelined); ok && company {
		if cmd, ok := runBatched(ctx, c, sc, keys, args); ok {
			return cmd
		}
	}
	return sc.Run(ctx, s.client, keys, args...)
}

// runBatched is runScript's EVALSHA through the autopipeliner. It reports
// false when the script must be sent the ordinary way: no autopipeliner,
// or the server's script cache lacks it (sc.Run loads it). Like
// fetchBatched it returns by ctx's deadline whatever Redis does; the call
// then may still take effect, as any call whose answer was lost.
func runBatched(ctx context.Context, c autoPipelined, sc *redis.Script, keys []string, args []any) (*redis.Cmd, bool) {
	ap, err := c.AsyncAutoPipeline() // one per client, made on first use
	if err != nil {
		return nil, false
	}
	// Keys and hash as pointers, as evalSha sends them: a string put into
	// an interface is an allocation of its own.
	h := scriptHash(sc)
	if h == nil {
		return nil, false // sc.Run loads it
	}
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", h, len(keys))
	for i := range keys {
		cmdArgs = append(cmdArgs, &keys[i])
	}
	cmd := redis.NewCmd(ctx, append(cmdArgs, args...)...)
	if err := ap.Submit(ctx, cmd).WaitContext(ctx); err != nil {
		if isReply(err, replyNoScript) {
			return nil, false
		}
		if ctx.Err() != nil {
			// Not cmd: its batch may still be filling it in.
			failed := redis.NewCmd(ctx)
			failed.SetErr(err)
			return failed, true
		}
	}
	return cmd, true
}

// runCode runs a script that returns a result code and maps it.
func (s *Store) runCode(ctx context.Context, name string, sc *redis.Script, keys []string, args ...any) error {
	code, err := s.runScript(ctx, sc, keys, args...).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", name, err)
	}
	return codeErr(code)
}

// Reply errors the store reacts to.
const (
	replyNoGroup   = "NOGROUP"   // the consumer group (or its stream) does not exist
	replyBusyGroup = "BUSYGROUP" // the consumer group exists already
	replyNoScript  = "NOSCRIPT"  // the server's script cache lacks the script
)

// isReply reports whether err is the server's reply error of that kind. It
// is the only place where error text is read.
func isReply(err error, kind string) bool {
	if kind == replyNoScript && errors.Is(err, redis.ErrNoScript) {
		return true
	}
	return redis.HasErrorPrefix(err, kind)
}

// isRedisError reports whether err is a reply error of one command (as
// opposed to a network or context failure of the whole pipeline).
func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
