package redisstore

import "github.com/redis/go-redis/v9"

// HonoursDeadlines reports whether every call of the Store returns by its
// context's deadline: true when the go-redis client has
// ContextTimeoutEnabled, which makes it bound the wait for a pooled
// connection, the dial, and each socket write and read by the deadline
// (without it, only by its own Dial/Read/WriteTimeout). The HTTP API then
// calls the Store directly instead of in a watchdog goroutine per call.
// WatchStatus's subscription is not bounded by a deadline by design.
func (s *Store) HonoursDeadlines() bool {
	switch c := s.client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false // another UniversalClient: unknown, so no
}
