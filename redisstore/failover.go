package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// This file makes a Store on a Redis Cluster follow a failover within a
// second or so of the promotion (docs/scaling.md).
//
// go-redis's ClusterClient refreshes its slot map on MOVED and ASK, on
// READONLY, and otherwise only every ClusterStateReloadInterval (60 s,
// not settable through UniversalOptions). A master that dies answers
// neither: its connections are refused or cut, and the client, which
// retries a failed command on the same stale map, keeps sending that
// master's slots to the dead address until the next periodic refresh —
// 55 s of 503s after a promotion, measured. So every failure that may
// mean the topology moved (a refused, cut or timed-out connection,
// CLUSTERDOWN, TRYAGAIN, MASTERDOWN...) asks for a refresh at once.

// reloadEvery bounds how often a store asks for a refresh. go-redis
// coalesces requests (one reload at a time, then 200 ms of cooldown, then
// one more if any came meanwhile), so this only spares it the calls.
const reloadEvery = 50 * time.Millisecond

// failover watches a cluster client's errors and refreshes its slot map
// when one may mean a failover. It is a go-redis hook, on the cluster
// client and on every node client (node errors are seen before the
// cluster client's own retries, which then use the fresh map).
type failover struct {
	cc   *redis.ClusterClient
	next atomic.Int64 // unix nanoseconds before which no reload is asked
	// reloads counts the refreshes asked for (for tests and logs).
	reloads atomic.Int64
}

// followFailovers installs a failover on client when it is a cluster
// client, and returns it; nil otherwise. Nodes the client already knows
// get no node hook (go-redis has no way to reach them); the cluster-level
// hook covers them, one call later.
func followFailovers(client redis.UniversalClient) *failover {
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	f := &failover{cc: cc}
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(f) })
	cc.AddHook(f)
	return f
}

// note asks for a refresh when err may mean the topology changed, at most
// once per reloadEvery. An error after ctx ended is the caller's deadline,
// not the cluster's doing.
func (f *failover) note(ctx context.Context, err error) {
	if err == nil || errors.Is(err, redis.Nil) || ctx.Err() != nil || !topologyError(err) {
		return
	}
	now := time.Now().UnixNano()
	next := f.next.Load()
	if now < next || !f.next.CompareAndSwap(next, now+int64(reloadEvery)) {
		return
	}
	f.reloads.Add(1)
	f.cc.ReloadState(context.Background())
}

// topologyError reports whether err may mean that a slot moved to another
// node: Redis out of reach or between masters (unreachable), or a
// redirection that go-redis did not follow itself.
func topologyError(err error) bool {
	return unreachable(err) || isReply(err, "MOVED") || isReply(err, "ASK")
}

func (f *failover) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		f.note(ctx, err)
		return c, err
	}
}

func (f *failover) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		f.note(ctx, err)
		return err
	}
}

func (f *failover) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		seen := err
		// A pipeline's error is its first failed command's: look at each.
		for _, c := range cmds {
			if seen != nil {
				break
			}
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
				seen = e
			}
		}
		f.note(ctx, seen)
		return err
	}
}

// statusFollower turns a status subscription's messages into the payloads
// WatchStatus decodes, surviving the loss of the subscription's node.
//
// go-redis's PubSub channel reconnects by itself when its connection
// breaks (and pings it every 3 s, so a silent one is found too), on the
// node that serves the channel's slot in the client's current map (the
// failover hook refreshes it: the reconnect's dial to the dead node is an
// error it sees), and subscribes again. What was published in between is
// lost, and the subscriber would never know: so each new subscription
// after the first is answered with the instance's status as read then,
// as if it had been published. Duplicates are harmless (a receiver goes
// by revision).
func (s *Store) statusFollower(ctx context.Context, done <-chan struct{}, ps *redis.PubSub, id interpreter.InstanceID) <-chan *redis.Message {
	in := ps.ChannelWithSubscriptions()
	out := make(chan *redis.Message, 16)
	go func() {
		defer close(out)
		for m := range in {
			var msg *redis.Message
			switch m := m.(type) {
			case *redis.Message:
				msg = m
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				msg = s.resync(ctx, m.Channel, id)
			}
			if msg == nil {
				continue
			}
			select {
			case out <- msg:
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// resync reads the instance's status as a status notice on channel; nil
// when it cannot be read (the next change will be published anyway).
func (s *Store) resync(ctx context.Context, channel string, id interpreter.InstanceID) *redis.Message {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.FetchStatus(rctx, id)
	if err != nil {
		s.log.Warn("redisstore: re-reading a watched status after resubscribing", "instance", id, "err", err)
		return nil
	}
	b, err := json.Marshal(interpreter.StatusChange{
		Instance: id, Status: st.Status, CustomStatus: st.CustomStatus, Output: st.Output,
		Revision: st.Revision, Time: st.LastUpdatedTime,
	})
	if err != nil {
		return nil
	}
	return &redis.Message{Channel: channel, Payload: string(b)}
}
