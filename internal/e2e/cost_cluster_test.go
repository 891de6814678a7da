package e2e

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestReserveTicketCostOnCluster is TestReserveTicketCost on a Redis
// Cluster of three masters and three replicas: round trips are counted on
// each node's connection (a pipeline split over three masters is three),
// commands by the masters' INFO commandstats less the test's own. It logs
// the figures for docs/benchmarks.md and checks that every instance
// completes with the right output.
func TestReserveTicketCostOnCluster(t *testing.T) {
	redistest.SkipOnCluster(t, "it starts a cluster of its own with fresh commandstats; the default run covers it")
	const n = 1000
	cl := redistest.StartCluster(t, redistest.ClusterOpts{})
	ctx := context.Background()
	opts := func() *redis.ClusterOptions {
		return &redis.ClusterOptions{Addrs: cl.Addrs(), Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true, PoolSize: 64}
	}
	var rt roundTrips
	counted := redis.NewClusterClient(opts())
	counted.OnNewNode(func(c *redis.Client) { c.AddHook(&rt) })
	defer counted.Close()
	var own commands // the test's polling and INFO calls
	poller := redis.NewClusterClient(opts())
	poller.OnNewNode(func(c *redis.Client) { c.AddHook(&own) })
	defer poller.Close()

	store := redisstore.New(counted, redisstore.Options{})
	if err := store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	polls := redisstore.New(poller, redisstore.Options{})
	src, err := os.ReadFile("../../workflows/reserve-ticket.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := dsl.Parse("reserve-ticket.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutDefinition(ctx, def.Name, def.Hash, def.Source, time.Now()); err != nil {
		t.Fatal(err)
	}
	cat := interpreter.NewCatalog(store)
	cat.Add(def)

	// commandsOnMasters sums INFO commandstats over the masters.
	commandsOnMasters := func() int64 {
		var mu sync.Mutex // ForEachMaster calls the masters concurrently
		var masters []*redis.Client
		err := poller.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			masters = append(masters, c)
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, c := range masters {
			total += commandsExecuted(t, c)
		}
		return total
	}
	rt.n.Store(0)
	own.n.Store(0)
	cmd0 := commandsOnMasters()
	own0 := own.n.Load()

	deadline := time.Now().Add(2 * time.Minute)
	reserveTicketBurst(t, store, cat, def, n, func(id string) {
		for {
			st, err := polls.FetchStatus(ctx, interpreter.InstanceID(id))
			if err == nil && st.Status.Terminal() {
				jsonEq(t, "output of "+id, st.Output, "true")
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not finished: %+v %v", id, st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	polled := own.n.Load() - own0
	// - 3: the first INFO on each master shows up in the last one.
	cmds := commandsOnMasters() - cmd0 - polled - 3
	t.Logf("ReserveTicket on a 3+3 cluster, %d instances in a burst: %.2f round trips (per node) and %.1f Redis commands (Lua included) per instance",
		n, float64(rt.n.Load())/n, float64(cmds)/n)
}
