package redistest

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/internal/redisproc"
)

// ModeEnv names the environment variable that picks the Redis the store
// and end-to-end suites run on: unset (or "single") runs each test on its
// own redis-server; "cluster" runs them all on one shared Redis Cluster of
// 3 masters and 3 replicas (SharedCluster).
const ModeEnv = "CAIRN_TEST_REDIS"

// OnCluster reports whether the suites run on a cluster (ModeEnv=cluster).
func OnCluster() bool { return os.Getenv(ModeEnv) == "cluster" }

// SkipOnCluster skips the test on the cluster run only; why names what
// makes the test single-node (e.g. it reads one server's INFO).
func SkipOnCluster(t testing.TB, why string) {
	t.Helper()
	if OnCluster() {
		t.Skipf("single-node test, skipped on %s=cluster: %s", ModeEnv, why)
	}
}

var shared struct {
	mu  sync.Mutex
	c   *redisproc.Cluster
	dir string
	err error
}

// SharedCluster is the package run's one cluster, started by the first
// call and stopped by StopShared (call it from TestMain after m.Run). It
// outlives the test, so it is not stopped by t.Cleanup; the caller
// isolates its tests (e.g. by flushing every master first). Never kill or
// restart its nodes: later tests share it.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "cairn-shared-cluster-")
		if err == nil {
			shared.dir = dir
			shared.c, err = redisproc.StartCluster(context.Background(), redisproc.ClusterOptions{Dir: dir})
		}
		shared.err = err
	}
	if shared.err != nil {
		fatal(t, shared.err)
	}
	return &Cluster{c: shared.c}
}

// StopShared stops the shared cluster, if one was started, and removes its
// files.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.Stop()
		shared.c = nil
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
		shared.dir = ""
	}
}
