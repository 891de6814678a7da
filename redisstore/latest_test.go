package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/redisstore"
)

// latestEventually polls s until name's latest is want.
func latestEventually(t *testing.T, s *redisstore.Store, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := s.LatestDefinition(context.Background(), name)
		if err == nil && h == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("latest of %s: %q, %v; want %q", name, h, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cached waits until e.s answers name's latest, want, from its cache (no
// round trip): the deployment subscription is up and the entry kept.
func (e *env) cached(name, want string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := e.trips.measure(func() {
			if h, err := e.s.LatestDefinition(e.ctx, name); err != nil || h != want {
				e.t.Fatalf("latest of %s: %q, %v; want %q", name, h, err, want)
			}
		})
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("LatestDefinition still reads Redis after 10 s: the deployment subscription never came up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A name looked up once is answered from the cache, once the deployment
// subscription is confirmed: no round trip.
func TestLatestDefinitionIsCached(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	if _, err := e.s.PutDefinition(e.ctx, "Wf", "h1", []byte("v1"), t0); err != nil {
		t.Fatal(err)
	}
	e.cached("Wf", "h1")
	// The deploying process sees its own deployment at once.
	if _, err := e.s.PutDefinition(e.ctx, "Wf", "h2", []byte("v2"), t0); err != nil {
		t.Fatal(err)
	}
	if h, err := e.s.LatestDefinition(e.ctx, "Wf"); err != nil || h != "h2" {
		t.Fatalf("latest right after PutDefinition: %q, %v; want h2", h, err)
	}
}

// A deployment through another store (another process) reaches a store
// that cached the previous version, also after its subscription's
// connection was killed.
func TestLatestDefinitionFollowsOtherProcesses(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	other := e.newClient(redis.Options{})
	t.Cleanup(func() { other.Close() })
	deployer := redisstore.New(other, redisstore.Options{})

	if _, err := deployer.PutDefinition(e.ctx, "Wf", "h1", []byte("v1"), t0); err != nil {
		t.Fatal(err)
	}
	e.cached("Wf", "h1")
	for i, h := range []string{"h2", "h3", "h1"} {
		if i == 1 {
			// Cut every subscriber off: a version stored while the
			// cache's subscription is down must not be missed.
			if err := other.Do(e.ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := deployer.PutDefinition(e.ctx, "Wf", h, []byte("v-"+h), t0); err != nil {
			t.Fatal(err)
		}
		latestEventually(t, e.s, "Wf", h)
		e.cached("Wf", h)
	}
	// An unknown name is never cached as missing.
	if _, err := e.s.LatestDefinition(e.ctx, "Other"); err == nil {
		t.Fatal("latest of an undeployed workflow: no error")
	}
	if _, err := deployer.PutDefinition(e.ctx, "Other", "h9", []byte("v9"), t0); err != nil {
		t.Fatal(err)
	}
	latestEventually(t, e.s, "Other", "h9")
}
