package interpreter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

// DefaultConsumer returns a consumer name for a process that was given
// none: host-pid-random, so that engines and activity runtimes sharing a
// store never share a name.
func DefaultConsumer() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%06x", host, os.Getpid(), rand.Uint32()&0xffffff)
}

// Sleep waits for d or until ctx is done, whichever comes first, and
// reports whether the whole d passed. The background loops of engines and
// activity runtimes back off with it.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
