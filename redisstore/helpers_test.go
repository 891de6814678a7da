package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

var _ interpreter.Store = (*redisstore.Store)(nil)

// t0 is the tests' clock origin; times are whole milliseconds, as stored.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type env struct {
	t *testing.T
	// srv is the test's own redis-server; nil on the cluster run
	// (redistest.OnCluster), where cl is the shared cluster instead.
	srv    *redistest.Server
	cl     *redistest.Cluster
	client redis.UniversalClient
	s      *redisstore.Store
	trips  *counter
	ctx    context.Context
}

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

func newEnv(t *testing.T, opts redisstore.Options) *env {
	t.Helper()
	return newEnvWith(t, opts, redistest.StartOpts{})
}

func newEnvWith(t *testing.T, opts redisstore.Options, so redistest.StartOpts) *env {
	t.Helper()
	e := &env{t: t, trips: &counter{}, ctx: context.Background()}
	if redistest.OnCluster() {
		if so.AOF || len(so.Args) > 0 {
			t.Skipf("single-node test, skipped on %s=cluster: it configures its own redis-server (%+v)", redistest.ModeEnv, so)
		}
		e.cl = redistest.SharedCluster(t)
		cc := newClusterClient(t, e.cl)
		// Each node client counts its own round trips: under
		// DurabilityReplica the store sends its scripts to the masters'
		// clients directly, past the cluster client's hooks.
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(e.trips) })
		e.client = cc
		flushCluster(t, cc)
		if opts.Durability == redisstore.DurabilityNone {
			opts.Durability = redisstore.DurabilityReplica // cairn serve's default on a cluster
		}
	} else {
		e.srv = redistest.StartWith(t, so)
		e.client = redis.NewClient(&redis.Options{Addr: e.srv.Addr()})
		e.client.AddHook(e.trips)
	}
	t.Cleanup(func() { e.client.Close() })
	e.s = redisstore.New(e.client, opts)
	if err := e.s.Init(e.ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// newClusterClient is a client of cl with cairn serve's cluster options
// (redisopts.go).
func newClusterClient(t testing.TB, cl *redistest.Cluster) *redis.ClusterClient {
	t.Helper()
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true})
}

// flushCluster empties every master of the shared cluster (and so its
// replicas) and drops the scripts, so each test starts on an empty Redis
// as on its own redis-server.
func flushCluster(t testing.TB, c *redis.ClusterClient) {
	t.Helper()
	err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		if err := m.FlushAll(ctx).Err(); err != nil {
			return err
		}
		return m.ScriptFlush(ctx).Err()
	})
	if err != nil {
		t.Fatalf("flush cluster: %v", err)
	}
}

// newClient is another client of the test's Redis, its own server or the
// shared cluster, with o's timeouts and retries.
func (e *env) newClient(o redis.Options) redis.UniversalClient {
	e.t.Helper()
	var c redis.UniversalClient
	if e.cl != nil {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: e.cl.Addrs(), Protocol: 2, DisableIdentity: true,
			ContextTimeoutEnabled: o.ContextTimeoutEnabled, ReadTimeout: o.ReadTimeout, MaxRetries: o.MaxRetries, DialerRetries: o.DialerRetries})
	} else {
		o.Addr = e.srv.Addr()
		c = redis.NewClient(&o)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// single skips the test on the cluster run; why names what makes it
// single-node.
func (e *env) single(why string) {
	e.t.Helper()
	redistest.SkipOnCluster(e.t, why)
}

// counter counts round trips: a command or a whole pipeline is one.
type counter struct {
	mu   sync.Mutex
	n    int
	cmds [][]any
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.n++
		c.cmds = append(c.cmds, cmd.Args())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		c.n++
		for _, cmd := range cmds {
			c.cmds = append(c.cmds, cmd.Args())
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// measure returns the round trips and commands f makes.
func (c *counter) measure(f func()) (int, [][]any) {
	c.mu.Lock()
	c.n, c.cmds = 0, nil
	c.mu.Unlock()
	f()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.cmds
}

func newInstance(id string, created time.Time, input string) interpreter.NewInstance {
	var in json.RawMessage
	if input != "" {
		in = json.RawMessage(input)
	}
	return interpreter.NewInstance{
		State: &interpreter.State{
			ID: interpreter.InstanceID(id), Name: "Wf", DefHash: "h1",
			Status: interpreter.StatusPending, Input: in,
			CreatedTime: created, LastUpdatedTime: created,
		},
		Start: interpreter.Event{Kind: interpreter.EvStart, Time: created},
	}
}

func (e *env) create(id string, created time.Time) {
	e.t.Helper()
	if err := e.s.CreateInstance(e.ctx, newInstance(id, created, `{"x":1}`)); err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
}

// readAll reads every pending new work item of all partitions.
func (e *env) readAll(consumer string) []interpreter.WorkItem {
	e.t.Helper()
	var all []interpreter.WorkItem
	for {
		items, err := e.s.ReadWork(e.ctx, consumer, e.parts(), 1000, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(items) == 0 {
			return all
		}
		all = append(all, items...)
	}
}

func (e *env) parts() []int {
	ps := make([]int, e.s.Partitions())
	for i := range ps {
		ps[i] = i
	}
	return ps
}

func (e *env) load(id string) *interpreter.State {
	e.t.Helper()
	sts, err := e.s.LoadStates(e.ctx, []interpreter.InstanceID{interpreter.InstanceID(id)})
	if err != nil {
		e.t.Fatal(err)
	}
	return sts[0]
}

// transition builds a transition of the loaded state of id consuming work.
func (e *env) transition(id string, work string, mutate func(*interpreter.State), cmds ...interpreter.Command) *interpreter.Transition {
	e.t.Helper()
	st := e.load(id)
	if st == nil {
		e.t.Fatalf("no instance %s", id)
	}
	from := st.Revision
	next := *st
	next.Revision = from + 1
	if mutate != nil {
		mutate(&next)
	}
	return &interpreter.Transition{State: &next, FromRevision: from, WorkID: work, Commands: cmds,
		History: []interpreter.HistoryEvent{{Type: "Step", Timestamp: next.LastUpdatedTime}}}
}

func (e *env) commit(ts ...*interpreter.Transition) []error {
	e.t.Helper()
	errs, err := e.s.Commit(e.ctx, ts)
	if err != nil {
		e.t.Fatal(err)
	}
	return errs
}

// finish commits a transition of id to status without consuming work.
func (e *env) finish(id string, status interpreter.RuntimeStatus) {
	e.t.Helper()
	tr := e.transition(id, "", func(s *interpreter.State) {
		s.Status = status
		s.Output = json.RawMessage(`"done"`)
		s.LastUpdatedTime = s.LastUpdatedTime.Add(time.Second)
	})
	tr.StatusChanged = true
	if errs := e.commit(tr); errs[0] != nil {
		e.t.Fatalf("finish %s: %v", id, errs[0])
	}
}

func ids(n int, f string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(f, i)
	}
	return out
}

type redisAddArgs = redis.XAddArgs
