package redisstore

import (
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/interpreter"
)

// This file is the only place Redis key and channel names are formatted.
// The table in doc.go documents them; keys_test.go checks the two agree.

// Consumer groups.
const (
	groupEngine  = "engine"  // on every partition's work stream
	groupWorkers = "workers" // on every task stream
)

// Fields of the instance hash.
const (
	fStatus  = "st"   // runtime status name
	fRev     = "rev"  // revision, an integer
	fMeta    = "meta" // JSON: name, definition hash, times, pending
	fInput   = "in"   // input JSON; absent = null
	fOutput  = "out"  // output JSON; absent = null
	fCustom  = "cs"   // custom status JSON; absent = never set
	fRuntime = "rt"   // JSON: variables, cursor, buffered and held events, seq
	// c (created unix ms) and mseq (last message number) are written by the
	// scripts only.
)

// Fields of the definition hash other than the content hashes themselves.
const (
	fLatest      = "latest"
	fCreatedPref = "t:"
)

type keys struct {
	prefix string // ends with ":"
	// parts holds, per partition of the deployment (forPartitions), the
	// keys that name only the partition, formatted once: a commit names
	// half a dozen of them, and formatting each was an allocation.
	parts []partKeys
}

// partKeys are one partition's keys, as the builders below format them.
type partKeys struct {
	part, work, timers, finished, counts, withdrawn, localTasks string
}

func newKeys(prefix string) keys {
	prefix = strings.TrimSuffix(prefix, ":")
	if prefix == "" {
		prefix = "cairn"
	}
	return keys{prefix: prefix + ":"}
}

// partitionOf is fnv32a(id) mod n, computed here rather than through
// hash/fnv, whose interface made id's bytes a copy on the heap
// (TestPartitionOfIsFNV holds the two to one result).
func partitionOf(id interpreter.InstanceID, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// forPartitions is k with the keys of partitions 0..n-1 formatted up
// front. Other partitions are formatted per call, as without it.
func (k keys) forPartitions(n int) keys {
	k.parts = nil // format from scratch, not from a cache
	parts := make([]partKeys, n)
	for p := range parts {
		parts[p] = partKeys{
			part: k.part(p), work: k.work(p), timers: k.timers(p), finished: k.finished(p),
			counts: k.counts(p), withdrawn: k.withdrawn(p), localTasks: k.tasks(p, interpreter.LocalQueue),
		}
	}
	k.parts = parts
	return k
}

// cached is partition p's formatted keys, nil when there are none.
func (k keys) cached(p int) *partKeys {
	if p >= 0 && p < len(k.parts) {
		return &k.parts[p]
	}
	return nil
}

// part is the prefix of every key of partition p: the hash tag {p} puts
// them all in one cluster slot.
func (k keys) part(p int) string {
	if c := k.cached(p); c != nil {
		return c.part
	}
	return k.prefix + "{" + strconv.Itoa(p) + "}:"
}

func (k keys) inst(p int, id interpreter.InstanceID) string { return k.part(p) + "inst:" + string(id) }
func (k keys) hist(p int, id interpreter.InstanceID) string { return k.part(p) + "log:" + string(id) }

func (k keys) work(p int) string {
	if c := k.cached(p); c != nil {
		return c.work
	}
	return k.part(p) + "work"
}

func (k keys) timers(p int) string {
	if c := k.cached(p); c != nil {
		return c.timers
	}
	return k.part(p) + "timers"
}

func (k keys) tasks(p int, queue string) string {
	if c := k.cached(p); c != nil && queue == interpreter.LocalQueue {
		return c.localTasks
	}
	return k.part(p) + "tasks:" + queue
}

func (k keys) index(p int) string { return k.part(p) + "index" }

func (k keys) finished(p int) string {
	if c := k.cached(p); c != nil {
		return c.finished
	}
	return k.part(p) + "finished"
}

// counts is the partition's hash of instances per workflow and runtime
// status (countField), kept by the scripts that change either.
func (k keys) counts(p int) string {
	if c := k.cached(p); c != nil {
		return c.counts
	}
	return k.part(p) + "counts"
}

// Its fields are "<workflow>\n<status>" (workflow names hold no "\n";
// the scripts join the two), and countsMarker, which says the partition
// has been counted (its value: since when, unix ms; recount_instances
// sets it) and, without a "\n", is never a count.
const countsMarker = "since"

// withdrawn is the pub/sub channel of the partition's withdrawn tasks.
func (k keys) withdrawn(p int) string {
	if c := k.cached(p); c != nil {
		return c.withdrawn
	}
	return k.part(p) + "withdrawn"
}

// status is the pub/sub channel of an instance's status changes.
func (k keys) status(p int, id interpreter.InstanceID) string {
	return k.part(p) + "status:" + string(id)
}

// instKeys are inst, hist and status of the instance, formatted as one
// string (one allocation, not three) that the three are parts of.
func (k keys) instKeys(p int, id interpreter.InstanceID) (inst, hist, status string) {
	pt := k.part(p)
	all := pt + "inst:" + string(id) + pt + "log:" + string(id) + pt + "status:" + string(id)
	i := len(pt) + len("inst:") + len(id)
	h := i + len(pt) + len("log:") + len(id)
	return all[:i], all[i:h], all[h:]
}

func (k keys) def(name string) string { return k.prefix + "def:" + name }
func (k keys) defs() string           { return k.prefix + "defs" }

// deployed is the pub/sub channel on which PutDefinition announces the
// name of each workflow whose latest version it set.
func (k keys) deployed() string { return k.prefix + "deployed" }

// engines is the zset of live engines: consumer name → last heartbeat
// (unix ms, from the engine's clock).
func (k keys) engines() string { return k.prefix + "engines" }

// slots is the zset of a global concurrency semaphore: holder → unix ms
// its lease ends (slots.go).
func (k keys) slots(name string) string { return k.prefix + "slots:" + name }

// meta is the hash of deployment-wide facts recorded when the data is
// first written (fPartitions).
func (k keys) meta() string { return k.prefix + "meta" }

// fPartitions is the meta field holding the partition count P.
const fPartitions = "partitions"

// schedules is the hash of every schedule's state: schedule id → state
// JSON (schedules.go). One key: schedules are few, and a scheduler reads
// them all in one call.
func (k keys) schedules() string { return k.prefix + "schedules" }

// timerMember is the timers zset member of one timer. Instance ids hold no
// control characters, so the first "\n" separates the two parts
// (fire_timers.lua splits there).
func timerMember(id interpreter.InstanceID, timer string) string {
	return string(id) + "\n" + timer
}

// appendTimerMember appends timerMember(id, timer) to dst.
func appendTimerMember(dst []byte, id interpreter.InstanceID, timer string) []byte {
	dst = append(dst, id...)
	dst = append(dst, '\n')
	return append(dst, timer...)
}
