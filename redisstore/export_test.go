package redisstore

import (
	"context"

	"github.com/cairnhq/cairn/interpreter"
)

// PartitionOf exposes the partition function to the external tests.
func PartitionOf(id string, n int) int { return partitionOf(interpreter.InstanceID(id), n) }

// FetchStatusBatched is FetchStatus as a read that finds another in flight
// makes it: batched through the autopipeliner.
func (s *Store) FetchStatusBatched(ctx context.Context, id interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	s.statusReads.Add(1)
	defer s.statusReads.Add(-1)
	return s.FetchStatus(ctx, id)
}
