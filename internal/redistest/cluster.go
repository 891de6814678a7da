package redistest

import (
	"context"
	"testing"

	"github.com/cairnhq/cairn/internal/redisproc"
)

// ClusterOpts configures a Cluster. Dir is ignored: the nodes keep their
// files in the test's temporary directory.
type ClusterOpts = redisproc.ClusterOptions

// Cluster is a Redis Cluster of 3 masters and 3 replicas on loopback,
// killed when the test ends. Nodes are numbered 0..5 for good; which are
// masters changes with failovers.
type Cluster struct {
	c *redisproc.Cluster
}

// StartCluster starts a cluster and waits until it is healthy: every node
// says cluster_state:ok, every slot is served, every replica is in sync.
// When redis-server or redis-cli is not on PATH the test is skipped, or
// fails when the environment sets CI=true.
func StartCluster(t testing.TB, opts ClusterOpts) *Cluster {
	t.Helper()
	opts.Dir = t.TempDir()
	c, err := redisproc.StartCluster(context.Background(), opts)
	if err != nil {
		fatal(t, err)
	}
	t.Cleanup(c.Stop)
	return &Cluster{c: c}
}

// Addrs are every node's host:port, the seeds for a cluster client.
func (c *Cluster) Addrs() []string { return c.c.Addrs() }

// Addr is node i's host:port.
func (c *Cluster) Addr(i int) string { return c.c.Addr(i) }

// Topology is every node's state as a running node sees it.
func (c *Cluster) Topology(t testing.TB) []redisproc.NodeState {
	t.Helper()
	top, err := c.c.Topology()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return top
}

// MasterOf is the node serving slot (see redisproc.KeySlot).
func (c *Cluster) MasterOf(t testing.TB, slot int) int {
	t.Helper()
	i, err := c.c.MasterOf(slot)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return i
}

// Kill SIGKILLs node i without waiting for a failover.
func (c *Cluster) Kill(i int) { c.c.Kill(i) }

// KillMaster SIGKILLs master i and waits until one of its replicas has
// taken over its slots, on every running node's view; it returns that
// replica.
func (c *Cluster) KillMaster(t testing.TB, i int) (promoted int) {
	t.Helper()
	promoted, err := c.c.KillMaster(context.Background(), i)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return promoted
}

// KillMasterOf SIGKILLs the master serving slot and waits until one of its
// replicas has taken over; it returns both.
func (c *Cluster) KillMasterOf(t testing.TB, slot int) (killed, promoted int) {
	t.Helper()
	killed, promoted, err := c.c.KillMasterOf(context.Background(), slot)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return killed, promoted
}

// Restart starts killed node i again and waits until the cluster is healthy
// with it (a former master comes back as a replica).
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	if err := c.c.Restart(context.Background(), i); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}

// WaitHealthy waits until every running node agrees the cluster is whole.
func (c *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	if err := c.c.WaitHealthy(context.Background()); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}
