package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// unavailableReplies are the reply errors of a Redis that cannot serve now
// but will: loading its data after a restart, busy with a script, a
// cluster or replica set between masters, out of memory or refusing writes
// after a failed save.
var unavailableReplies = []string{"LOADING", "BUSY ", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "NOREPLICAS", "OOM", "MISCONF"}

// classify is the one place the Store tells a Redis out of reach from
// other failures; every exported method's error goes through it on the
// way out (deferred, so no return is missed). An unreachable error becomes
// interpreter.ErrUnavailable, its cause kept in the chain and the message.
// The same failure after ctx has ended is ctx's doing, not Redis's: the
// client bounds its socket reads by ctx's deadline, and a read that
// deadline cut short is a timed-out net.Error. It then wraps ctx's error
// instead, so the caller sees its own deadline.
func classify(ctx context.Context, err *error) {
	e := *err
	if e == nil || !unreachable(e) || errors.Is(e, interpreter.ErrUnavailable) {
		return
	}
	if cerr := ctx.Err(); cerr != nil {
		if !errors.Is(e, cerr) {
			*err = fmt.Errorf("%w: %w", cerr, e)
		}
		return
	}
	*err = fmt.Errorf("%w: %w", interpreter.ErrUnavailable, e)
}

// classifyEach is classify for the errors of methods that answer per item.
func classifyEach(ctx context.Context, errs *[]error) {
	for i := range *errs {
		classify(ctx, &(*errs)[i])
	}
}

// unreachable reports whether err means Redis is out of reach or cannot
// serve for now, as opposed to a request that is wrong or a bug: a
// refused, lost, cut or timed-out connection, a pool timeout, a closed
// client, or one of unavailableReplies.
func unreachable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	for _, kind := range unavailableReplies {
		if isReply(err, kind) {
			return true
		}
	}
	return false
}
