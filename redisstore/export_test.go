package redisstore

import "github.com/cairnhq/cairn/interpreter"

// PartitionOf exposes the partition function to the external tests.
func PartitionOf(id string, n int) int { return partitionOf(interpreter.InstanceID(id), n) }
