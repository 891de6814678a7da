package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairnhq/cairn/interpreter"
)

// Definitions live outside the partitions: cairn:def:<name> holds every
// version's source by content hash, "latest" and "t:<hash>" created times;
// cairn:defs is the set of names. Each write below is a single-key command,
// so they run on Redis Cluster without a shared slot; together they are
// idempotent, so a PutDefinition interrupted half-way is completed by
// running it again.

// PutDefinition stores src as the version hash of workflow name and makes
// it the latest. Storing the same content again adds no version (but makes
// it the latest again), and announces the name on the deployment channel
// so every process's latest cache drops it. created reports whether the
// name was new. One round trip (two on a cluster under DurabilityReplica:
// the definition and the list of names live on different masters).
func (s *Store) PutDefinition(ctx context.Context, name, hash string, src []byte, now time.Time) (created bool, err error) {
	defer classify(ctx, &err)
	if name == "" || !validHash(hash) {
		return false, fmt.Errorf("redisstore: invalid definition name %q or hash %q", name, hash)
	}
	key := s.k.def(name)
	var added *redis.IntCmd
	version := func(p redis.Pipeliner) {
		p.HSetNX(ctx, key, hash, src)
		p.HSetNX(ctx, key, fCreatedPref+hash, ms(now))
		p.HSet(ctx, key, fLatest, hash)
	}
	listed := func(p redis.Pipeliner) {
		added = p.SAdd(ctx, s.k.defs(), name)
		p.Publish(ctx, s.k.deployed(), name)
	}
	if _, cluster := s.client.(*redis.ClusterClient); cluster && s.repl != nil {
		// Two slots, two masters: each pipeline waits on its own.
		err = s.replicatedPipeline(ctx, key, version)
		if err == nil {
			err = s.replicatedPipeline(ctx, s.k.defs(), listed)
		}
	} else {
		err = s.replicatedPipeline(ctx, key, func(p redis.Pipeliner) { version(p); listed(p) })
	}
	if err != nil {
		s.latest.drop(name) // it may have been stored: read it again
		return false, fmt.Errorf("redisstore: storing definition %s: %w", name, err)
	}
	// Before answering: a start this process serves next sees the new
	// version even if the announcement has not come back yet.
	s.latest.drop(name)
	return added.Val() == 1, nil
}

// LatestDefinition returns the hash of the latest version of name;
// ErrNotFound when there is none. One round trip, or none when the latest
// cache has the name (latest.go).
func (s *Store) LatestDefinition(ctx context.Context, name string) (_ string, err error) {
	defer classify(ctx, &err)
	s.latest.start.Do(func() { go s.watchDeployments() })
	if h, ok := s.latest.get(name); ok {
		return h, nil
	}
	gen := s.latest.generation()
	h, err := s.client.HGet(ctx, s.k.def(name), fLatest).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("definition %s: %w", name, interpreter.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: reading definition %s: %w", name, err)
	}
	s.latest.put(name, h, gen)
	return h, nil
}

// DescribeDefinition returns the latest hash and the versions (oldest
// first) of name, without sources; ErrNotFound when there is none. One
// round trip.
func (s *Store) DescribeDefinition(ctx context.Context, name string) (_ *interpreter.DefinitionInfo, err error) {
	defer classify(ctx, &err)
	cmds, err := s.runScripts(ctx, []scriptCall{s.describeCall(name)})
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading definition %s: %w", name, err)
	}
	info, err := decodeDefinition(name, cmds[0])
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("definition %s: %w", name, interpreter.ErrNotFound)
	}
	return info, nil
}

// ListDefinitions describes every stored workflow, by name. Two round
// trips: the names, then their descriptions.
func (s *Store) ListDefinitions(ctx context.Context) (_ []interpreter.DefinitionInfo, err error) {
	defer classify(ctx, &err)
	names, err := s.client.SMembers(ctx, s.k.defs()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: listing definitions: %w", err)
	}
	if len(names) == 0 {
		return []interpreter.DefinitionInfo{}, nil
	}
	slices.Sort(names)
	calls := make([]scriptCall, len(names))
	for i, n := range names {
		calls[i] = s.describeCall(n)
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("redisstore: listing definitions: %w", err)
	}
	out := make([]interpreter.DefinitionInfo, 0, len(names))
	for i, c := range cmds {
		info, err := decodeDefinition(names[i], c)
		if err != nil {
			return nil, err
		}
		if info != nil {
			out = append(out, *info)
		}
	}
	return out, nil
}

func (s *Store) describeCall(name string) scriptCall {
	return scriptCall{script: describeDefinitionCmd, keys: []string{s.k.def(name)}, args: []any{fCreatedPref, fLatest}}
}

// decodeDefinition decodes a describe_definition reply; nil when empty.
func decodeDefinition(name string, c *redis.Cmd) (*interpreter.DefinitionInfo, error) {
	vals, err := c.StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading definition %s: %w", name, err)
	}
	if len(vals) == 0 {
		return nil, nil
	}
	info := &interpreter.DefinitionInfo{Name: name, Latest: vals[0], Versions: []interpreter.Version{}}
	for i := 1; i+1 < len(vals); i += 2 {
		t, _ := strconv.ParseInt(vals[i+1], 10, 64)
		info.Versions = append(info.Versions, interpreter.Version{Hash: vals[i], Created: fromMS(t)})
	}
	slices.SortFunc(info.Versions, func(a, b interpreter.Version) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Hash, b.Hash))
	})
	return info, nil
}
