package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redisproc"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestReplicaDurabilityWaitsForTheReplica: on a master with one replica,
// every acknowledged write is on the replica when the call returns, in one
// round trip; with the replica gone a write is answered all the same
// and counted as unreplicated, and once the store knows the master has no
// replica its writes do not wait at all.
func TestReplicaDurabilityWaitsForTheReplica(t *testing.T) {
	master := redistest.Start(t)
	host, port, _ := strings.Cut(master.Addr(), ":")
	replica := redistest.StartWith(t, redistest.StartOpts{Args: []string{"--replicaof", host, port}})
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	waitFor(t, "the replica to sync", func() bool {
		info, _ := rc.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})

	mc := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { mc.Close() })
	trips := &counter{}
	mc.AddHook(trips)
	s := redisstore.New(mc, redisstore.Options{Durability: redisstore.DurabilityReplica, ReplicaTimeout: 300 * time.Millisecond})
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	onReplica := redisstore.New(rc, redisstore.Options{})

	now := time.Now()
	// The first write to a master asks it for its replicas (one INFO).
	if err := s.CreateInstance(ctx, newInstance("first", now, `{}`)); err != nil {
		t.Fatal(err)
	}
	n, cmds := trips.measure(func() {
		if err := s.CreateInstance(ctx, newInstance("a", now, `{}`)); err != nil {
			t.Fatal(err)
		}
	})
	if n != 1 {
		t.Errorf("a create under replica durability took %d round trips, want 1: %v", n, cmds)
	}
	if last := cmds[len(cmds)-1]; fmt.Sprint(last[0]) != "wait" {
		t.Errorf("the create's pipeline ends in %v, want WAIT", last)
	}
	// The replica has it now, not eventually.
	if _, err := onReplica.FetchStatus(ctx, "a"); err != nil {
		t.Errorf("the acknowledged instance on the replica: %v", err)
	}
	if err := s.RaiseEvent(ctx, "a", "go", []byte(`1`), now); err != nil {
		t.Fatal(err)
	}
	if got := s.Unreplicated(); got != 0 {
		t.Errorf("Unreplicated() = %d with a live replica, want 0", got)
	}

	// Cut the replica loose: the master has none left.
	if err := rc.SlaveOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the master to lose its replica", func() bool {
		info, _ := mc.Info(ctx, "replication").Result()
		return strings.Contains(info, "connected_slaves:0")
	})
	if err := s.CreateInstance(ctx, newInstance("b", now, `{}`)); err != nil {
		t.Fatalf("a write without a replica is still answered: %v", err)
	}
	if got := s.Unreplicated(); got != 1 {
		t.Errorf("Unreplicated() = %d after a write no replica took, want 1", got)
	}
	_, cmds = trips.measure(func() {
		if err := s.CreateInstance(ctx, newInstance("c", now, `{}`)); err != nil {
			t.Fatal(err)
		}
	})
	for _, c := range cmds {
		if fmt.Sprint(c[0]) == "wait" {
			t.Errorf("a write to a master known to have no replica waited: %v", cmds)
		}
	}
	if got := s.Unreplicated(); got != 2 {
		t.Errorf("Unreplicated() = %d, want 2", got)
	}
	if st, err := s.FetchStatus(ctx, "c"); err != nil || st == nil {
		t.Errorf("instance c on the master: %v", err)
	}
}

// TestFsyncDurabilityNeedsAppendfsyncAlways: Init refuses a server that
// does not fsync every write, naming what it has, and accepts it once it
// does.
func TestFsyncDurabilityNeedsAppendfsyncAlways(t *testing.T) {
	e := newEnvWith(t, redisstore.Options{}, redistest.StartOpts{Args: []string{"--appendonly", "yes", "--appendfsync", "everysec"}})
	s := redisstore.New(e.client, redisstore.Options{Durability: redisstore.DurabilityFsync})
	err := s.Init(e.ctx)
	if err == nil || !strings.Contains(err.Error(), "appendfsync everysec") || !strings.Contains(err.Error(), "appendfsync always") {
		t.Fatalf("Init under fsync durability with appendfsync everysec: %v, want a refusal naming both", err)
	}
	if err := e.client.ConfigSet(e.ctx, "appendfsync", "always").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(e.ctx); err != nil {
		t.Fatalf("Init with appendfsync always: %v", err)
	}
	if err := s.CreateInstance(e.ctx, newInstance("a", time.Now(), `{}`)); err != nil {
		t.Fatal(err)
	}
}

func TestParseDurability(t *testing.T) {
	for _, s := range []string{"none", "replica", "fsync"} {
		d, err := redisstore.ParseDurability(s)
		if err != nil || d.String() != s {
			t.Errorf("ParseDurability(%q) = %v, %v", s, d, err)
		}
	}
	if _, err := redisstore.ParseDurability("always"); err == nil || !strings.Contains(err.Error(), `"always"`) {
		t.Errorf("ParseDurability(always): %v, want an error quoting it", err)
	}
}

// TestReplicaDurabilityOnClusterFailover: on a 3+3 cluster, instances are
// created and raised into from 8 clients while the master of some of
// their slots is SIGKILLed; every create and raise the store acknowledged
// is there after the promotion (the replica that took over had each of
// them before its answer), and writes go on.
func TestReplicaDurabilityOnClusterFailover(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOpts{})
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: cl.Addrs(), Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRedirects: 8,
	})
	t.Cleanup(func() { cc.Close() })
	s := redisstore.New(cc, redisstore.Options{Durability: redisstore.DurabilityReplica, ReplicaTimeout: 500 * time.Millisecond})
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}

	const clients, each = 8, 60
	var (
		mu    sync.Mutex
		acked []interpreter.InstanceID
	)
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				if c == 0 && i == each/3 {
					close(killed) // a third of the way: the failover starts
				}
				id := interpreter.InstanceID(fmt.Sprintf("c%d-%d", c, i))
				if !retryUnavailable(t, func() error {
					err := s.CreateInstance(ctx, newInstance(string(id), time.Now(), `{}`))
					if errors.Is(err, interpreter.ErrAlreadyRunning) {
						return nil // an earlier try took effect, its answer was lost
					}
					return err
				}) {
					return
				}
				if !retryUnavailable(t, func() error { return s.RaiseEvent(ctx, id, "go", []byte(`1`), time.Now()) }) {
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	<-killed
	// The master of the partitions' first slots; KillMasterOf waits for
	// the promotion while the clients keep writing.
	_, promoted := cl.KillMasterOf(t, redisproc.KeySlot("cairn{0}:work"))
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(acked) != clients*each {
		t.Fatalf("%d of %d instances acknowledged", len(acked), clients*each)
	}
	for _, id := range acked {
		st, err := s.FetchStatus(ctx, id)
		if err != nil || st == nil {
			t.Errorf("acknowledged instance %s after the failover to node %d: %v", id, promoted, err)
		}
	}
	t.Logf("%d instances and their events acknowledged across the failover; %d writes answered without a replica (the promoted master has none)",
		len(acked), s.Unreplicated())
}

// retryUnavailable calls f until it succeeds, retrying ErrUnavailable for
// up to a minute; false (the test failed) otherwise.
func retryUnavailable(t *testing.T, f func() error) bool {
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil {
			return true
		}
		if !errors.Is(err, interpreter.ErrUnavailable) || time.Now().After(deadline) {
			t.Errorf("store call: %v", err)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
