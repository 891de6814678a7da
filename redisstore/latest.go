package redisstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// latestCache keeps, for each workflow name this process has looked up, the
// hash of its latest version, so that a start (LatestDefinition, then
// CreateInstance) costs one round trip instead of two.
//
// An entry is only as good as the process's subscription to the deployment
// channel, on which PutDefinition announces every new latest version in the
// same round trip as it stores it: a message drops the name's entry, and
// while the subscription is not confirmed (before the first SUBSCRIBE
// reply, after a lost connection, a failed ping) nothing is kept and every
// lookup reads Redis. A start on another process may thus use the previous
// version only for as long as Redis takes to deliver the announcement
// (well under a millisecond on a LAN); on the deploying process it never
// does, since PutDefinition drops its own entry before answering.
type latestCache struct {
	mu     sync.Mutex
	live   bool // subscribed: entries may be kept
	gen    uint64
	hashes map[string]string
	start  sync.Once
}

// get returns name's cached latest hash.
func (c *latestCache) get(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hashes[name]
	return h, ok
}

// generation is the count of invalidations so far; a value read from Redis
// after it may be kept (put) only if no invalidation came in between.
func (c *latestCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps hash as name's latest if the cache is live and nothing was
// invalidated since gen.
func (c *latestCache) put(name, hash string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && c.gen == gen {
		if c.hashes == nil {
			c.hashes = map[string]string{}
		}
		c.hashes[name] = hash
	}
}

// drop forgets name's entry (a new version was announced).
func (c *latestCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.hashes, name)
}

// reset forgets every entry and says whether new ones may be kept.
func (c *latestCache) reset(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	clear(c.hashes)
}

// deployPing is how long the deployment subscription may stay silent
// before it is pinged: a connection that died without a reset is found
// within about twice this.
const deployPing = 5 * time.Second

// watchDeployments keeps the latest cache in step with the deployment
// channel until the client is closed. go-redis reconnects a subscription
// whose connection broke (and subscribes again) on the next receive; one
// that went silent and does not answer a ping is replaced. Until a
// subscription is confirmed the cache keeps nothing.
func (s *Store) watchDeployments() {
	for s.followDeployments() {
		s.latest.reset(false)
		time.Sleep(100 * time.Millisecond)
	}
	s.latest.reset(false)
}

// followDeployments runs one subscription to the deployment channel; it
// reports false when the client is closed, true when the subscription
// should be replaced.
func (s *Store) followDeployments() bool {
	ctx := context.Background()
	ps := s.client.Subscribe(ctx, s.k.deployed())
	defer ps.Close()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, deployPing)
		var ne net.Error
		switch m := msg.(type) {
		case *redis.Subscription:
			s.latest.reset(m.Kind == "subscribe")
		case *redis.Message:
			s.latest.drop(m.Payload)
		case *redis.Pong:
			pinged = false
		}
		switch {
		case err == nil:
		case errors.Is(err, redis.ErrClosed):
			return false
		case errors.As(err, &ne) && ne.Timeout():
			// Silence: ask for a sign of life, and give up on the
			// connection if none came since the last ask.
			if pinged || ps.Ping(ctx) != nil {
				return true
			}
			pinged = true
		default:
			// A broken connection: the next receive dials again and
			// resubscribes; until then nothing is kept.
			s.latest.reset(false)
			time.Sleep(100 * time.Millisecond)
		}
	}
}
