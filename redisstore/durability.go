package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file decides what an acknowledged write waits for (docs/scaling.md,
// "Durability"). Redis answers a write once it is in the master's memory
// (and, with append-only on, in the kernel's page cache): a master that
// dies before its replica has the write takes it along, and the promoted
// replica never saw it. With DurabilityReplica every write a client is
// told about (start, raised event, terminate, suspend, resume, signal
// with start, an activity's outcome, a committed transition, a deployed
// definition or schedule) is followed by WAIT 1 in the same pipeline, on
// the same connection, so it costs no round trip of its own: the answer
// comes once a replica has the write.

// Durability is what an acknowledged write waits for.
type Durability int

const (
	// DurabilityNone waits for the master alone. A killed redis-server
	// with append-only on loses nothing it answered (the write reached
	// the kernel first); a lost host may lose up to a second of writes
	// (appendfsync everysec), a lost cluster master what its replica had
	// not received yet.
	DurabilityNone Durability = iota
	// DurabilityReplica waits, after every acknowledged write, until at
	// least one replica of the master has it (WAIT 1), for at most
	// Options.ReplicaTimeout.
	DurabilityReplica
	// DurabilityFsync relies on the server's appendfsync always: Redis
	// answers a write only once it is on disk. Init checks the setting on
	// every master and refuses to start without it.
	DurabilityFsync
)

// defaultReplicaTimeout bounds the WAIT after a write. A replica on the
// same network acknowledges in well under a millisecond; one that has not
// in a second is down or far behind.
const defaultReplicaTimeout = time.Second

// replicaCheckEvery is how often the store asks each master it writes to
// how many replicas it has (INFO replication): a master left without
// replicas (its own was promoted away, or died) is written to without
// WAIT, which could only wait out ReplicaTimeout on every write there.
const replicaCheckEvery = time.Second

// ParseDurability reads a --durability value: none, replica or fsync.
func ParseDurability(s string) (Durability, error) {
	switch strings.TrimSpace(s) {
	case "none":
		return DurabilityNone, nil
	case "replica":
		return DurabilityReplica, nil
	case "fsync":
		return DurabilityFsync, nil
	}
	return 0, fmt.Errorf("durability must be none, replica or fsync, not %q", s)
}

func (d Durability) String() string {
	switch d {
	case DurabilityNone:
		return "none"
	case DurabilityReplica:
		return "replica"
	case DurabilityFsync:
		return "fsync"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// ackedScripts are the scripts whose effect a caller is told about; with
// DurabilityReplica they are followed by WAIT. The others (reads, timer
// moves, lease renewals, housekeeping) are redone if a failover loses
// them.
var ackedScripts = map[*redis.Script]bool{
	createInstanceCmd:     true,
	createInstanceOnceCmd: true,
	commitTransitionCmd:   true,
	enqueueEventCmd:       true,
	finishTaskCmd:         true,
	purgeInstanceCmd:      true,
	purgeManyCmd:          true,
	signalWithStartCmd:    true,
	saveScheduleCmd:       true,
}

// replication keeps, per master, how many replicas it has, and counts
// the acknowledged writes no replica confirmed.
type replication struct {
	timeout time.Duration
	// masters maps a master's address to its *master.
	masters      sync.Map
	unreplicated atomic.Int64
	log          func(addr string, err error)
	checking     sync.Once
}

// master is what the store knows of one master's replicas.
type master struct {
	c        *redis.Client // nil: cannot be asked (writes always WAIT)
	replicas atomic.Int64
}

// waits reports whether a write to the master at addr (client c) is to be
// followed by WAIT; one that is not is counted as unreplicated. A master
// seen for the first time (at start, or promoted by a failover) is asked
// at once: one INFO round trip per master and process.
func (r *replication) waits(ctx context.Context, addr string, c pipeliner) bool {
	v, ok := r.masters.Load(addr)
	if !ok {
		m := &master{}
		m.c, _ = c.(*redis.Client)
		m.replicas.Store(1) // unknown: wait
		if m.c != nil {
			if m.replicas.Store(countReplicas(ctx, m.c)); m.replicas.Load() == 0 {
				r.log(addr, errors.New("it has no replica connected"))
			}
		}
		v, _ = r.masters.LoadOrStore(addr, m)
		r.checking.Do(func() { go r.check() })
	}
	if v.(*master).replicas.Load() == 0 {
		r.unreplicated.Add(1)
		return false
	}
	return true
}

// check asks every known master for its replicas, every replicaCheckEvery,
// until the client is closed.
func (r *replication) check() {
	for {
		time.Sleep(replicaCheckEvery)
		closed := false
		r.masters.Range(func(addr, v any) bool {
			m := v.(*master)
			if m.c == nil {
				return true
			}
			ctx, cancel := context.WithTimeout(context.Background(), replicaCheckEvery)
			n := countReplicas(ctx, m.c)
			cancel()
			if n < 0 {
				closed = true
				return false
			}
			if old := m.replicas.Swap(n); old > 0 && n == 0 {
				r.log(addr.(string), errors.New("it has no replica connected"))
			}
			return true
		})
		if closed {
			return
		}
	}
}

// countReplicas is the master's connected_slaves; 1 when it cannot say
// (a write then waits, and the WAIT tells), -1 when the client is closed.
func countReplicas(ctx context.Context, c *redis.Client) int64 {
	info, err := c.Info(ctx, "replication").Result()
	if errors.Is(err, redis.ErrClosed) {
		return -1
	}
	if err != nil {
		return 1
	}
	_, rest, ok := strings.Cut(info, "connected_slaves:")
	if !ok {
		return 1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]), 10, 64)
	if err != nil {
		return 1
	}
	return n
}

// acked takes a WAIT's answer for writes to addr: no replica within the
// timeout means they stand on the master alone; the master is then
// written to without WAIT until a check finds a replica again.
func (r *replication) acked(addr string, wait *redis.IntCmd, writes int) {
	n, err := wait.Result()
	if err == nil && n >= 1 {
		return
	}
	r.unreplicated.Add(int64(writes))
	if err == nil {
		err = fmt.Errorf("no replica acknowledged within %s", r.timeout)
	}
	if v, ok := r.masters.Load(addr); ok && v.(*master).replicas.Swap(0) > 0 {
		r.log(addr, err)
	}
}

// Unreplicated counts the acknowledged writes that no replica confirmed
// under DurabilityReplica: writes to a master without replicas, or whose
// replicas fell behind. 0 under the other settings.
func (s *Store) Unreplicated() int64 {
	if s.repl == nil {
		return 0
	}
	return s.repl.unreplicated.Load()
}

// pipeliner is what pipeScripts sends on: the store's client, or one
// cluster node's client.
type pipeliner interface {
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// runReplicated is runScripts under DurabilityReplica: the calls go to
// their masters (one pipeline per master, each ending in WAIT), since a
// WAIT covers the writes of its own connection only and go-redis would
// send a keyless WAIT in a cluster pipeline to any node.
func (s *Store) runReplicated(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return s.pipeReplicated(ctx, s.client, s.addr, calls)
	}
	cmds := make([]*redis.Cmd, len(calls))
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	// Calls answered MOVED or ASK (a slot moved: the script did not run)
	// go again once the slot map is fresh.
	for attempt := 0; ; attempt++ {
		moved, err := s.replicatedOnNodes(ctx, cc, calls, todo, cmds)
		if err != nil || len(moved) == 0 || attempt == 2 {
			return cmds, err
		}
		cc.ReloadState(ctx)
		select {
		case <-ctx.Done():
			return cmds, nil // the moved calls keep their MOVED replies
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
		todo = moved
	}
}

// replicatedOnNodes runs the calls todo on their masters at once, filling
// cmds, and returns those answered MOVED or ASK.
func (s *Store) replicatedOnNodes(ctx context.Context, cc *redis.ClusterClient, calls []scriptCall, todo []int, cmds []*redis.Cmd) ([]int, error) {
	groups := map[*redis.Client][]int{}
	var order []*redis.Client
	for _, i := range todo {
		node, err := cc.MasterForKey(ctx, calls[i].keys[0])
		if err != nil {
			return nil, err
		}
		if _, ok := groups[node]; !ok {
			order = append(order, node)
		}
		groups[node] = append(groups[node], i)
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for g, node := range order {
		wg.Go(func() {
			idx := groups[node]
			sub := make([]scriptCall, len(idx))
			for j, i := range idx {
				sub[j] = calls[i]
			}
			out, err := s.pipeReplicated(ctx, node, node.Options().Addr, sub)
			if err != nil {
				errs[g] = err
				return
			}
			for j, i := range idx {
				cmds[i] = out[j]
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var moved []int
	for _, i := range todo {
		if err := cmds[i].Err(); isReply(err, "MOVED") || isReply(err, "ASK") {
			moved = append(moved, i)
		}
	}
	return moved, nil
}

// pipeReplicated runs calls in one pipeline on c, the master at addr,
// ending in WAIT unless that master is known to be without replicas.
func (s *Store) pipeReplicated(ctx context.Context, c pipeliner, addr string, calls []scriptCall) ([]*redis.Cmd, error) {
	var wait *redis.IntCmd
	if s.repl.waits(ctx, addr, c) {
		wait = redis.NewIntCmd(ctx, "wait", 1, s.repl.timeout.Milliseconds())
	}
	cmds, waits, err := pipeScripts(ctx, c, calls, wait)
	if err != nil {
		return nil, err
	}
	for _, w := range waits {
		s.repl.acked(addr, w, len(calls))
	}
	return cmds, nil
}

// replicatedPipeline runs fn's commands, all of one slot (key's), in one
// pipeline on that slot's master, followed by WAIT under
// DurabilityReplica; a plain pipeline otherwise.
func (s *Store) replicatedPipeline(ctx context.Context, key string, fn func(redis.Pipeliner)) error {
	if s.repl == nil {
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error { fn(p); return nil })
		return err
	}
	var c pipeliner = s.client
	addr := s.addr
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return err
		}
		c, addr = node, node.Options().Addr
	}
	var wait *redis.IntCmd
	if s.repl.waits(ctx, addr, c) {
		wait = redis.NewIntCmd(ctx, "wait", 1, s.repl.timeout.Milliseconds())
	}
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		if wait != nil {
			_ = p.Process(ctx, wait)
		}
		return nil
	}); err != nil && !isRedisError(err) {
		return err
	}
	if wait != nil {
		s.repl.acked(addr, wait, 1)
	}
	return nil
}

// checkFsync is Init's check under DurabilityFsync: every master must
// append every write to disk before it answers.
func (s *Store) checkFsync(ctx context.Context) error {
	check := func(ctx context.Context, c *redis.Client) error {
		vals, err := c.ConfigGet(ctx, "append*").Result()
		if err != nil {
			if isRedisError(err) {
				return fmt.Errorf("--durability fsync needs to read the server's appendonly and appendfsync (CONFIG GET): %w; "+
					"choose --durability none or replica", err)
			}
			return err
		}
		if vals["appendonly"] != "yes" || vals["appendfsync"] != "always" {
			return fmt.Errorf("--durability fsync needs the Redis at %s to run with appendonly yes and appendfsync always, "+
				"it has appendonly %s and appendfsync %s: set them (redis.conf, or CONFIG SET) or choose --durability none or replica",
				c.Options().Addr, vals["appendonly"], vals["appendfsync"])
		}
		return nil
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, check)
	case *redis.Client:
		return check(ctx, c)
	}
	return fmt.Errorf("--durability fsync: cannot check a %T", s.client)
}

// batchTimeout bounds one batch of replicated writes on the wire: the
// callers' own deadlines differ, and one caller giving up must not cancel
// the others' writes.
const batchTimeout = 10 * time.Second

// batcher joins the replicated single writes to one master (starts and
// raised events from many HTTP clients at once, activity outcomes) that
// arrive while a batch is on the wire into the next one: one pipeline and
// one WAIT for all of them, as the autopipeliner joins unreplicated ones
// (runBatched). A write alone goes out at once.
type batcher struct {
	s    *Store
	c    pipeliner
	addr string

	mu    sync.Mutex
	busy  bool // a goroutine is sending batches
	queue []*batchedCall
}

type batchedCall struct {
	call scriptCall
	cmd  *redis.Cmd
	err  error
	done chan struct{}
}

// runOne is runScript under DurabilityReplica.
func (s *Store) runOne(ctx context.Context, call scriptCall) (*redis.Cmd, error) {
	c, addr := pipeliner(s.client), s.addr
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, call.keys[0])
		if err != nil {
			return nil, err
		}
		c, addr = node, node.Options().Addr
	}
	b, _ := s.batchers.Load(addr)
	if b == nil {
		b, _ = s.batchers.LoadOrStore(addr, &batcher{s: s, c: c, addr: addr})
	}
	job := &batchedCall{call: call, done: make(chan struct{})}
	b.(*batcher).submit(job)
	select {
	case <-job.done:
	case <-ctx.Done():
		// The batch may still carry the write, as any call whose
		// answer was lost.
		return nil, ctx.Err()
	}
	if job.err == nil && (isReply(job.cmd.Err(), "MOVED") || isReply(job.cmd.Err(), "ASK")) {
		// The slot moved: runReplicated follows it.
		cmds, err := s.runReplicated(ctx, []scriptCall{call})
		if err != nil {
			return nil, err
		}
		return cmds[0], nil
	}
	return job.cmd, job.err
}

func (b *batcher) submit(job *batchedCall) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, job)
	if !b.busy {
		b.busy = true
		go b.run()
	}
}

// run sends the queued calls, batch after batch, until none is left.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		batch := b.queue
		b.queue = nil
		if len(batch) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		calls := make([]scriptCall, len(batch))
		for i, j := range batch {
			calls[i] = j.call
		}
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		cmds, err := b.s.pipeReplicated(ctx, b.c, b.addr, calls)
		cancel()
		for i, j := range batch {
			if err != nil {
				j.err = err
			} else {
				j.cmd = cmds[i]
			}
			close(j.done)
		}
	}
}
