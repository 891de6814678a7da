package redisstore_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestMoveToCluster is docs/scaling.md's "Moving from one Redis to a
// cluster": the keys of a stopped deployment on one Redis, copied into a
// cluster with `redis-cli --cluster import --cluster-copy`, are a working
// store there: the partition count, every instance and its status, the
// work not read yet, and the work an engine had read but not finished
// (taken over as after a lease).
func TestMoveToCluster(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is needed (apt-get install redis-tools)")
	}
	ctx := context.Background()
	single := redistest.Start(t)
	sc := redis.NewClient(&redis.Options{Addr: single.Addr()})
	t.Cleanup(func() { sc.Close() })
	old := redisstore.New(sc, redisstore.Options{Partitions: 8})
	if err := old.Init(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 40
	now := time.Now()
	for i := range n {
		if err := old.CreateInstance(ctx, newInstance(fmt.Sprintf("m%02d", i), now, `{"i":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	parts := []int{0, 1, 2, 3, 4, 5, 6, 7}
	// An engine read some of the starts and stopped before finishing them.
	read, err := old.ReadWork(ctx, "old-engine", parts, 10, 0)
	if err != nil || len(read) == 0 {
		t.Fatalf("reading work: %d items, %v", len(read), err)
	}

	cl := redistest.StartCluster(t, redistest.ClusterOpts{})
	out, err := exec.Command(cli, "--cluster", "import", cl.Addr(0), "--cluster-from", single.Addr(), "--cluster-copy").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster import: %v\n%s", err, out)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { cc.Close() })
	if err := redisstore.New(cc, redisstore.Options{Partitions: 16}).Init(ctx); err == nil {
		t.Error("the cluster took --partitions 16 for data written with 8")
	}
	moved := redisstore.New(cc, redisstore.Options{Partitions: 8, Durability: redisstore.DurabilityReplica})
	if err := moved.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := interpreter.InstanceID(fmt.Sprintf("m%02d", i))
		if st, err := moved.FetchStatus(ctx, id); err != nil || st.Status != interpreter.StatusPending {
			t.Errorf("instance %s on the cluster: %+v, %v", id, st, err)
		}
	}
	// What the stopped engine had read is taken over (as a live engine
	// would after its lease), then the rest is read.
	var taken []interpreter.WorkItem
	for _, p := range parts {
		items, err := moved.ReclaimWork(ctx, "new-engine", p, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, items...)
	}
	var fresh []interpreter.WorkItem
	for {
		items, err := moved.ReadWork(ctx, "new-engine", parts, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		fresh = append(fresh, items...)
	}
	if len(fresh) != n-len(read) || len(taken) != len(read) {
		t.Errorf("on the cluster: %d unread starts (want %d) and %d taken over from the stopped engine (want %d)",
			len(fresh), n-len(read), len(taken), len(read))
	}
	if err := moved.CreateInstance(ctx, newInstance("after-move", now, `{}`)); err != nil {
		t.Errorf("a start on the cluster after the move: %v", err)
	}
}
