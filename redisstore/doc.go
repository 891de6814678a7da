// Package redisstore persists cairn's workflow instances, their work items,
// timers, activity tasks and definitions in Redis; it is the only package
// that knows Redis.
//
// # Keys
//
// Instances are spread over P partitions (Options.Partitions, default 16,
// fixed per deployment): p = fnv32a(id) mod P. Every key of partition p
// carries the hash tag {p}, so each transition touches one cluster slot and
// is one Lua script, on a single Redis or on Redis Cluster alike. Keys are
// formatted only in keys.go; scripts receive every key through KEYS.
// With the default prefix "cairn":
//
//	key                          type    meaning
//	cairn:{p}:inst:<id>          hash    instance: st (status), rev (revision), meta (JSON: name, definition hash, created and updated ms, pending), in (input), out (output), cs (custom status), rt (JSON: variables, cursor, buffered and held events, seq), c (created unix ms), mseq (messages numbered), tk:<task id> (stream entry id of each task queued or delivered, not finished), pk:<task id> (task JSON of a queued task parked while suspended)
//	cairn:{p}:log:<id>           list    instance history, one element per transition (JSON array of lines), the last Options.HistoryMax kept
//	cairn:{p}:work               stream  work items of the partition's instances, fields i (instance id) and e (event JSON); consumer group engine
//	cairn:{p}:timers             zset    timers, member "<id>\n<timer id>", score due unix ms
//	cairn:{p}:tasks:<queue>      stream  activity tasks of one queue, field j (ScheduleTask JSON); consumer group workers
//	cairn:{p}:index              zset    instance ids by created unix ms, for listing and bulk purge
//	cairn:{p}:finished           zset    ids of finished instances by finished unix ms, kept only with Options.Retention set, for ExpireFinished
//	cairn:{p}:counts             hash    instances per workflow and runtime status: "<workflow>\n<status>" → count, kept by the scripts that create, commit, purge and expire; since → unix ms the partition was first counted (counts.go)
//	cairn:{p}:status:<id>        channel pub/sub: StatusChange JSON on every runtime or custom status change
//	cairn:{p}:withdrawn          channel pub/sub: {i: instance id, t: [task ids]} when a commit withdraws tasks a consumer holds
//	cairn:def:<name>             hash    workflow definition: <hash> → YAML source, latest → hash, t:<hash> → created unix ms
//	cairn:defs                   set     workflow definition names
//	cairn:engines                zset    live engines: consumer name, score its last heartbeat (unix ms from its clock); an engine silent for a few beats is taken over and removed (heartbeat.go)
//	cairn:schedules              hash    schedule id → state JSON (next tick, last run and instance, pause, buffered tick, rev), moved by compare-and-set (schedules.go)
//	cairn:slots:<name>           zset    a global concurrency limit's semaphore (`concurrency: {scope: global}`), name "<workflow>/<activity>": holder → unix ms its lease ends; expired holders are dropped by the next acquire (slots.go)
//	cairn:meta                   hash    partitions → the partition count P, recorded when the data is first written; Init refuses another
//
// Work items and tasks are deleted from their streams when acknowledged,
// so the streams hold only what is pending.
//
// # When an instance ends, so does its work
//
// The commit that ends an instance (or continues it as new, drops a
// branch, or times an attempt out) withdraws the tasks it no longer waits
// for (interpreter.CancelTask), found through the instance's tk: fields: a
// queued entry is deleted, so no read hands it out; a delivered one is
// acknowledged too, and the withdrawn channel tells its holder (the
// activity runtime cancels the handler; an external worker learns it from
// its next heartbeat or outcome, which answers
// interpreter.ErrInstanceFinished). Suspending parks the queued tasks in
// the instance hash and resuming queues them again, so a suspended
// instance has none handed out.
//
// # Transitions
//
// Every change of an instance is one script in scripts/ (each headed by its
// KEYS/ARGV/returns contract) and therefore atomic: creating it, committing
// a transition (guarded by the revision and by the acknowledgement of its
// work item, so a redelivered item is applied once), queuing an event or a
// control message, firing due timers, finishing an activity task, purging.
// Time always comes from the caller, never from the server. Script result
// codes become interpreter's sentinel errors in one place (codeErr).
//
// Not atomic, and said so: PutDefinition is a pipeline of single-key
// idempotent commands (definitions and the names set live in different
// slots); AckWork pipelines XACKs (TrimWork drops acknowledged items in
// bulk); PurgeMany, ExpireFinished and ListInstances read the index (or the
// finished zset), then act, per batch, and the acting script checks again
// what it read.
//
// # Round trips
//
// Every method is one round trip to Redis (a pipeline where several keys
// are involved), except: ListDefinitions (2), ListInstances (2 per index
// page, usually one page), PurgeMany (2 per batch), ExpireFinished (none
// without retention, 1 when nothing is due, 2 per batch), ReadTasks (a
// second one only to hand back a surplus), ReclaimTasks and
// ReclaimTaskBatch (XPENDING IDLE, then a second one to XCLAIM what
// expired), ExtendTasks and ReleaseTasks (one pipeline for all), and any script
// call right after the server lost its script cache (one retry with EVAL).
// On Redis Cluster one XREADGROUP cannot span slots, so reads of several
// partitions poll the streams with a pipeline instead of blocking.
//
// It needs Redis 6.2 or later (XAUTOCLAIM, ZRANGE BYSCORE); it is tested
// against redis-server 7.
package redisstore
