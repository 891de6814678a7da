package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/internal/redistest"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// roundTrips counts calls to Redis: a pipeline is one round trip.
type roundTrips struct{ n atomic.Int64 }

// commands counts the commands a client sends: a pipeline counts each.
type commands struct{ n atomic.Int64 }

func (c *commands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// commandsExecuted is the total of calls in INFO commandstats, which counts
// the commands run inside Lua scripts too.
func commandsExecuted(t testing.TB, c redis.UniversalClient) int64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		i := strings.Index(line, "calls=")
		j := strings.Index(line[i:], ",")
		n, _ := strconv.ParseInt(line[i+6:i+j], 10, 64)
		total += n
	}
	return total
}

// TestReserveTicketCost measures Redis round trips and commands per
// ReserveTicket instance, start to finish, status reads excluded. The
// targets are 8 round trips and 40 commands.
func TestReserveTicketCost(t *testing.T) {
	redistest.SkipOnCluster(t, "it counts round trips and INFO commandstats of one redis-server; TestReserveTicketCostOnCluster measures a cluster")
	const n = 1000
	e := newEnv(t)
	e.deployFile("../../workflows/reserve-ticket.yaml")
	// The engine, the activity runner and the starts go through a counted
	// client; the test's status polling does not.
	var rt roundTrips
	counted := redis.NewClient(&redis.Options{Addr: e.srv.Addr()})
	defer counted.Close()
	counted.AddHook(&rt)
	store := redisstore.New(counted, redisstore.Options{})
	if err := store.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	cat := interpreter.NewCatalog(store)
	cat.Add(e.defs["ReserveTicket"])
	// The test's own polling and INFO calls go through e.client; they are
	// counted and subtracted.
	var own commands
	e.client.AddHook(&own)
	rt.n.Store(0)
	cmd0 := commandsExecuted(t, e.client)
	own.n.Store(0)

	reserveTicketBurst(t, store, cat, e.defs["ReserveTicket"], n, func(id string) {
		st := e.waitDone(id, 60*time.Second)
		jsonEq(t, "output", st.Output, "true")
	})
	cmds := commandsExecuted(t, e.client) - cmd0 - own.n.Load() + 1 // the last INFO counts itself
	info, _ := e.client.Info(context.Background(), "commandstats").Result()
	if testing.Verbose() {
		for _, line := range strings.Split(info, "\n") {
			if strings.HasPrefix(line, "cmdstat_") {
				t.Log(strings.TrimSpace(line))
			}
		}
	}
	perRT := float64(rt.n.Load()) / n
	perCmd := float64(cmds) / n
	t.Logf("ReserveTicket, %d instances in a burst: %.2f round trips and %.1f Redis commands (Lua included) per instance", n, perRT, perCmd)
	if perRT > 8 {
		t.Errorf("%.2f round trips per instance; the budget is 8", perRT)
	}
	if perCmd > 40 {
		t.Errorf("%.1f Redis commands per instance; the budget is 40", perCmd)
	}
}

// reserveTicketBurst runs an engine and an activity runtime on store,
// wired as cairn serve wires them (outcomes go straight to the engine),
// has sixteen clients start n ReserveTicket instances at once and raise
// BookingConfirmed into each, as a burst of users would, calls finished
// with each id in turn (it waits for the instance to end), and stops.
func reserveTicketBurst(t *testing.T, store *redisstore.Store, cat *interpreter.Catalog, def *dsl.Workflow, n int, finished func(id string)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	reg := activity.NewRegistry()
	eng := interpreter.NewEngine(store, cat, interpreter.EngineOptions{
		Consumer: "cost", Interpreter: interpreter.New(interpreter.Options{LocalActivity: reg.Has}),
	})
	go func() { eng.Run(ctx); done <- struct{}{} }()
	go func() {
		activity.NewRuntime(activity.Direct(store, eng), cat, reg, activity.Options{Consumer: "cost"}).Run(ctx)
		done <- struct{}{}
	}()
	defer func() { cancel(); <-done; <-done }() // also when finished fails the test
	var wg sync.WaitGroup
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += 16 {
				id := interpreter.InstanceID(fmt.Sprintf("cost-%04d", i))
				// As cairn serve's HTTP starts and raises: the first step
				// runs on the way in, and the raise applies at once.
				if err := eng.CreateInstance(ctx, interpreter.Instantiate(def, id, []byte(`"user1"`), time.Now())); err != nil {
					t.Error(err)
					return
				}
				if err := eng.RaiseEvent(ctx, id, "BookingConfirmed", []byte(`true`), time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		finished(fmt.Sprintf("cost-%04d", i))
	}
}
