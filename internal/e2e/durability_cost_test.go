package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestReserveTicketCostByDurability measures what each --durability costs
// (docs/benchmarks.md, "Durability"): on one Redis (none with appendfsync
// everysec, fsync with appendfsync always, replica with one replica) and
// on a 3+3 cluster (none, replica), ReserveTicket's round trips and Redis
// commands per instance in a burst of 1,000 and the burst's throughput,
// and the latency of an acknowledged start alone (200 in a row). It
// checks every instance completes; the figures are logged, not asserted.
func TestReserveTicketCostByDurability(t *testing.T) {
	redistest.SkipOnCluster(t, "it starts its own redis-servers (AOF, a replica) and a cluster of its own; the default run covers it")
	if testing.Short() {
		t.Skip("a measurement: -short leaves it out")
	}
	src, err := os.ReadFile("../../workflows/reserve-ticket.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := dsl.Parse("reserve-ticket.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	single := func(fsync string, replica bool) func(t *testing.T) (redis.UniversalClient, func() redis.UniversalClient) {
		return func(t *testing.T) (redis.UniversalClient, func() redis.UniversalClient) {
			srv := redistest.StartWith(t, redistest.StartOpts{Args: []string{"--appendonly", "yes", "--appendfsync", fsync}})
			if replica {
				host, port, _ := strings.Cut(srv.Addr(), ":")
				rep := redistest.StartWith(t, redistest.StartOpts{Args: []string{"--replicaof", host, port}})
				waitReplicaSynced(t, rep.Addr())
			}
			mk := func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64}) }
			return mk(), mk
		}
	}
	var cl *redistest.Cluster
	parent := t
	cluster := func(t *testing.T) (redis.UniversalClient, func() redis.UniversalClient) {
		if cl == nil {
			cl = redistest.StartCluster(parent, redistest.ClusterOpts{}) // shared by both cluster runs
		} else {
			flushCluster(t, cl)
		}
		mk := func() redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true, PoolSize: 64})
		}
		return mk(), mk
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T) (redis.UniversalClient, func() redis.UniversalClient)
		d     redisstore.Durability
	}{
		{"one Redis/none (appendfsync everysec)", single("everysec", false), redisstore.DurabilityNone},
		{"one Redis/fsync (appendfsync always)", single("always", false), redisstore.DurabilityFsync},
		{"one Redis/replica (one replica)", single("everysec", true), redisstore.DurabilityReplica},
		{"cluster/none", cluster, redisstore.DurabilityNone},
		{"cluster/replica", cluster, redisstore.DurabilityReplica},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Not run in parallel: each figure wants the machine to itself.
			measureDurability(t, c.setup, c.d, def)
		})
	}
}

func measureDurability(t *testing.T, setup func(t *testing.T) (redis.UniversalClient, func() redis.UniversalClient), d redisstore.Durability, def *dsl.Workflow) {
	const n = 1000
	ctx := context.Background()
	counted, mk := setup(t)
	var rt roundTrips
	addHook(counted, &rt)
	poller := mk()
	var own commands
	addHook(poller, &own)
	t.Cleanup(func() { counted.Close(); poller.Close() })

	store := redisstore.New(counted, redisstore.Options{Durability: d})
	if err := store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	polls := redisstore.New(poller, redisstore.Options{})
	if _, err := store.PutDefinition(ctx, def.Name, def.Hash, def.Source, time.Now()); err != nil {
		t.Fatal(err)
	}
	cat := interpreter.NewCatalog(store)
	cat.Add(def)

	rt.n.Store(0)
	cmd0 := commandsOn(t, poller)
	own0 := own.n.Load()
	t0 := time.Now()
	deadline := t0.Add(2 * time.Minute)
	var last time.Time
	reserveTicketBurst(t, store, cat, def, n, func(id string) {
		for {
			st, err := polls.FetchStatus(ctx, interpreter.InstanceID(id))
			if err == nil && st.Status.Terminal() {
				jsonEq(t, "output of "+id, st.Output, "true")
				last = time.Now()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not finished: %+v %v", id, st, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	elapsed := last.Sub(t0)
	polled := own.n.Load() - own0
	cmds := commandsOn(t, poller) - cmd0 - polled

	// Latency of one acknowledged start, nothing else running (no engine
	// takes them up).
	lat := make([]time.Duration, 200)
	for i := range lat {
		t0 := time.Now()
		id := interpreter.InstanceID(fmt.Sprintf("lat-%03d", i))
		if err := store.CreateInstance(ctx, interpreter.Instantiate(def, id, []byte(`"user1"`), time.Now())); err != nil {
			t.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	t.Logf("durability %s: %.2f round trips and %.1f Redis commands per instance; %.0f instances/s (%d in %.2fs); a lone start p50 %.2f ms, p99 %.2f ms; %d writes unreplicated",
		d, float64(rt.n.Load())/n, float64(cmds)/n, n/elapsed.Seconds(), n, elapsed.Seconds(),
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), store.Unreplicated())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// addHook puts h on c or, on a cluster, on every node client: a
// pipeline over three masters is three round trips.
func addHook(c redis.UniversalClient, h redis.Hook) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(h) })
		return
	}
	c.AddHook(h)
}

// commandsOn sums INFO commandstats over the masters c reaches (the INFO
// calls it sends count themselves: one per master, subtracted).
func commandsOn(t *testing.T, c redis.UniversalClient) int64 {
	var masters []*redis.Client
	switch c := c.(type) {
	case *redis.Client:
		masters = []*redis.Client{c}
	case *redis.ClusterClient:
		var mu sync.Mutex // ForEachMaster calls the masters concurrently
		if err := c.ForEachMaster(context.Background(), func(_ context.Context, m *redis.Client) error {
			mu.Lock()
			masters = append(masters, m)
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, m := range masters {
		total += commandsExecuted(t, m) - 1
	}
	return total
}

func waitReplicaSynced(t *testing.T, addr string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, _ := c.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica did not sync")
		}
	}
}

// flushCluster empties every master, for the next measurement.
func flushCluster(t *testing.T, cl *redistest.Cluster) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Protocol: 2, DisableIdentity: true})
	defer c.Close()
	if err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		if err := m.FlushAll(ctx).Err(); err != nil {
			return err
		}
		return m.ConfigResetStat(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
}
