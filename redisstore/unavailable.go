package redisstore

import (
	"errors"
	"net"

	"github.com/redis/go-redis/v9"
)

// unavailableReplies are the reply errors of a Redis that cannot serve now
// but will: loading its data after a restart, busy with a script, a
// cluster or replica set between masters, out of memory or refusing writes
// after a failed save.
var unavailableReplies = []string{"LOADING", "BUSY ", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "NOREPLICAS", "OOM", "MISCONF"}

// Unavailable reports whether err means Redis is out of reach or cannot
// serve for now (the caller should retry later), as opposed to a request
// that is wrong or a bug: a refused, lost or timed-out connection, a pool
// timeout, a closed client, or one of unavailableReplies. The HTTP API
// answers these with 503.
func (s *Store) Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) {
		return true
	}
	for _, kind := range unavailableReplies {
		if isReply(err, kind) {
			return true
		}
	}
	return false
}
