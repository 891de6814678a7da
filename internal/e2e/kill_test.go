package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// engineEnv, when set to a Redis address (or a cluster's node addresses,
// comma-separated), turns the test binary into an engine process for
// TestEngineKilledAtRandom (see TestMain).
const engineEnv = "CAIRN_E2E_ENGINE_REDIS"

// reclaimAfter is short so that the work a killed engine held is taken over
// quickly; it also makes live engines steal each other's slow items, which
// the exactly-once commit must absorb.
const reclaimAfter = 700 * time.Millisecond

func TestMain(m *testing.M) {
	if addr := os.Getenv(engineEnv); addr != "" {
		runEngineProcess(addr)
		return
	}
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

// runEngineProcess runs an engine and an activity runner until killed.
func runEngineProcess(addrs string) {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	nodes := strings.Split(addrs, ",")
	client := newRedisClient(nodes)
	opts := redisstore.Options{}
	if len(nodes) > 1 {
		opts = clusterStoreOptions(opts)
	}
	store := redisstore.New(client, opts)
	cat := interpreter.NewCatalog(store)
	consumer := fmt.Sprintf("child-%d", os.Getpid())
	go runActivitiesCounting(ctx, store, cat, consumer+"-act", reclaimAfter, countExecution(client))
	interpreter.NewEngine(store, cat, interpreter.EngineOptions{Consumer: consumer, ReclaimAfter: reclaimAfter, Batch: 16}).Run(ctx)
}

// countExecution records every activity execution in a test-only hash, so
// the test can count duplicates across processes.
func countExecution(client redis.UniversalClient) func(redisstore.Task) {
	return func(tk redisstore.Task) {
		client.HIncrBy(context.Background(), "e2e:executions", string(tk.Schedule.Instance)+"/"+tk.Schedule.TaskID, 1)
	}
}

func TestEngineKilledAtRandom(t *testing.T) {
	n, kills := 500, 8
	if testing.Short() {
		n, kills = 100, 3
	}
	e := newEnv(t)
	// A work item held by a killed engine comes back only after its lease
	// (reclaimAfter), so an event can reach the instance that late; the wait
	// timeout leaves room for that, so the expected outputs do not depend
	// on when the kills happen.
	e.deploy("kill.yaml", []byte(strings.Replace(strings.Replace(shortTicket, "timeout: 1s", "timeout: 6s", 1), "ShortTicket", "KillTicket", 1)))
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("k-%04d", i)
		e.start("KillTicket", id, "u")
		if i%2 == 0 {
			if err := e.raise(id, "BookingConfirmed", true); err != nil {
				t.Fatal(err)
			}
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spawn := func() *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), engineEnv+"="+e.redisAddrs())
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for k := 0; k < kills; k++ {
		cmd := spawn()
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	before := 0
	for i := 0; i < n; i++ {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(fmt.Sprintf("k-%04d", i)))
		if err == nil && st.Status.Terminal() {
			before++
		}
	}
	// A new engine finishes everything.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		interpreter.NewEngine(e.store, e.cat, interpreter.EngineOptions{Consumer: "survivor", ReclaimAfter: reclaimAfter}).Run(ctx)
		done <- struct{}{}
	}()
	go func() {
		runActivitiesCounting(ctx, e.store, e.cat, "survivor-act", reclaimAfter, countExecution(e.client))
		done <- struct{}{}
	}()
	defer func() { cancel(); <-done; <-done }()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("k-%04d", i)
		st := e.waitDone(id, 60*time.Second)
		jsonEq(t, id+" output", st.Output, fmt.Sprint(i%2 == 0))
		checkHistory(t, e.store, id)
	}
	execs, err := e.client.HGetAll(context.Background(), "e2e:executions").Result()
	if err != nil {
		t.Fatal(err)
	}
	dup := 0
	for _, v := range execs {
		var c int
		fmt.Sscan(v, &c)
		dup += c - 1
	}
	if len(execs) < n {
		t.Fatalf("only %d of %d activities ran", len(execs), n)
	}
	t.Logf("%d instances, %d engine kills (%d finished before the survivor started): all finished correctly; %d activity tasks, %d duplicate executions", n, kills, before, len(execs), dup)
}
