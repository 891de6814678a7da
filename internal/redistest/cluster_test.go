package redistest_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redisproc"
	"github.com/cairnhq/cairn/internal/redistest"
)

// checkShape fails unless the topology is 3 masters, each with one replica,
// serving every slot exactly once; it returns each master's replica.
func checkShape(t *testing.T, top []redisproc.NodeState) map[int]int {
	t.Helper()
	replicaOf := map[int]int{}
	owners := make([]int, redisproc.ClusterSlots)
	masters := 0
	for _, n := range top {
		if !n.Master {
			if n.MasterIndex < 0 || !top[n.MasterIndex].Master {
				t.Fatalf("replica %d has no master: %+v", n.Index, top)
			}
			if r, dup := replicaOf[n.MasterIndex]; dup {
				t.Fatalf("master %d has two replicas, %d and %d", n.MasterIndex, r, n.Index)
			}
			replicaOf[n.MasterIndex] = n.Index
			continue
		}
		masters++
		for _, r := range n.Slots {
			for s := r[0]; s <= r[1]; s++ {
				owners[s]++
			}
		}
	}
	if masters != redisproc.ClusterMasters || len(replicaOf) != redisproc.ClusterMasters {
		t.Fatalf("want %d masters with a replica each, got %d masters, replicas %v", redisproc.ClusterMasters, masters, replicaOf)
	}
	for s, n := range owners {
		if n != 1 {
			t.Fatalf("slot %d served by %d masters", s, n)
		}
	}
	return replicaOf
}

func TestClusterFailover(t *testing.T) {
	begin := time.Now()
	c := redistest.StartCluster(t, redistest.ClusterOpts{})
	t.Logf("cluster of %d nodes healthy after %s", len(c.Addrs()), time.Since(begin).Round(time.Millisecond))
	replicaOf := checkShape(t, c.Topology(t))

	// The slot map routes as Redis does: the key's master takes it, the
	// others redirect to it.
	const key = "cairn:{7}:probe"
	slot := redisproc.KeySlot(key)
	m := c.MasterOf(t, slot)
	if v, err := redisproc.Do(c.Addr(m), "SET", key, "v"); err != nil || v != "OK" {
		t.Fatalf("SET on the slot's master: %v %v", v, err)
	}
	other := (m + 1) % len(c.Addrs())
	for other == replicaOf[m] || !c.Topology(t)[other].Master {
		other = (other + 1) % len(c.Addrs())
	}
	_, err := redisproc.Do(c.Addr(other), "GET", key)
	var re redisproc.ReplyError
	if !errors.As(err, &re) || !strings.HasPrefix(string(re), "MOVED "+strconv.Itoa(slot)+" "+c.Addr(m)) {
		t.Fatalf("GET on another master: want MOVED %d %s, got %v", slot, c.Addr(m), err)
	}
	// WAIT makes the replica's copy certain, so the failover keeps it.
	if n, err := redisproc.Do(c.Addr(m), "WAIT", "1", "5000"); err != nil || n != int64(1) {
		t.Fatalf("WAIT: %v %v", n, err)
	}

	begin = time.Now()
	killed, promoted := c.KillMasterOf(t, slot)
	t.Logf("master %d killed, replica %d promoted after %s", killed, promoted, time.Since(begin).Round(time.Millisecond))
	if killed != m || promoted != replicaOf[m] {
		t.Fatalf("killed %d promoted %d, want %d and its replica %d", killed, promoted, m, replicaOf[m])
	}
	if got := c.MasterOf(t, slot); got != promoted {
		t.Fatalf("slot %d served by %d after the failover, want %d", slot, got, promoted)
	}
	if v, err := redisproc.Do(c.Addr(promoted), "GET", key); err != nil || v != "v" {
		t.Fatalf("GET on the promoted replica: %v %v", v, err)
	}

	begin = time.Now()
	c.Restart(t, killed)
	t.Logf("node %d back after %s", killed, time.Since(begin).Round(time.Millisecond))
	top := c.Topology(t)
	replicaOf = checkShape(t, top)
	if top[killed].Master || top[killed].MasterIndex != promoted {
		t.Fatalf("restarted node %d: master=%v of %d, want a replica of %d", killed, top[killed].Master, top[killed].MasterIndex, promoted)
	}
}
