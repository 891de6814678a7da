-- commit_transition: apply one interpreter transition atomically: check
-- the revision is unchanged and acknowledge the work item (trim_work
-- removes acknowledged items in bulk later),
-- then write the state, enqueue the tasks, add and remove timers, append
-- history, note a finished instance for retention and publish a status
-- change. Nothing is written unless both checks pass (a redelivered item
-- whose transition is committed already fails the revision check first,
-- then, recomputed, the acknowledgement).
--
-- KEYS, named below (commitKeys in Go, in this order):
--   instKey the instance hash     histKey its history list
--   workKey the work stream       timersKey the timers zset
--   finishedKey the finished zset
--   ackTaskKey the task stream of the task whose outcome this transition
--     consumed directly (ackTaskID; otherwise any key of the partition)
--   then one task stream per scheduled task, in ARGV order
-- ARGV, named below (commitArgs in Go, in this order):
--   workGroup, workID: the work item to acknowledge ('' = none)
--   fromRev, newRev; status, meta JSON
--   output ('' = null), customStatus ('' = never set; stored as '' too:
--     one HSET writes every field); runtime JSON
--   historyMax: history max entries (0 = keep no history)
--   statusChannel, statusChange JSON ('' = publish nothing)
--   nTasks, nTimerAdds, nTimerRemoves: the counts of the variable part
--   historyEntry: the transition's lines as a JSON array ('' = none)
--   finishedAt: unix ms, the instance finishes now and retention is on
--     ('' = neither); instanceID
--   createdAt: the instance's created unix ms: with the revision, it names
--     the state the transition was computed from (an engine may compute on
--     a cached state, and an instance replaced under its id restarts its
--     revisions)
--   taskGroup, ackTaskID: the task entry to acknowledge ('' = none)
--   then nTasks task JSONs (field j), nTimerAdds (due ms, member) pairs,
--   nTimerRemoves members.
-- Returns codeOK committed | codeGone the instance is gone | codeConflict
-- the revision moved (or the instance was replaced) | codeDuplicate the
-- work item was already acknowledged.
local instKey, histKey, workKey, timersKey, finishedKey, ackTaskKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local firstTaskKey = 7
local workGroup, workID, fromRev, newRev, status, meta, output, customStatus, runtime, historyMax, statusChannel, statusChange, nTasks, nTimerAdds, nTimerRemoves, historyEntry, finishedAt, instanceID, createdAt, taskGroup, ackTaskID = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16], ARGV[17], ARGV[18], ARGV[19], ARGV[20], ARGV[21]
local firstVarArg = 22
local codeOK, codeConflict, codeDuplicate, codeGone = 0, 2, 3, 6

local cur = redis.call('HMGET', instKey, 'rev', 'c')
if not cur[1] then return codeGone end
if cur[1] ~= fromRev then return codeConflict end
-- (instances created before the c field existed have none to compare)
if cur[2] and cur[2] ~= createdAt then return codeConflict end
if workID ~= '' then
  if redis.call('XACK', workKey, workGroup, workID) == 0 then return codeDuplicate end
end
if ackTaskID ~= '' then
  if redis.call('XACK', ackTaskKey, taskGroup, ackTaskID) == 0 then return codeDuplicate end
  redis.call('XDEL', ackTaskKey, ackTaskID)
end

redis.call('HSET', instKey, 'st', status, 'rev', newRev, 'meta', meta, 'rt', runtime,
  'out', output, 'cs', customStatus)

local a = firstVarArg
for i = 1, tonumber(nTasks) do
  redis.call('XADD', KEYS[firstTaskKey + i - 1], '*', 'j', ARGV[a])
  a = a + 1
end
for _ = 1, tonumber(nTimerAdds) do
  redis.call('ZADD', timersKey, ARGV[a], ARGV[a + 1])
  a = a + 2
end
for _ = 1, tonumber(nTimerRemoves) do
  redis.call('ZREM', timersKey, ARGV[a])
  a = a + 1
end
local hmax = tonumber(historyMax)
if hmax > 0 and historyEntry ~= '' then
  -- Trim only past the bound: one command per transition otherwise.
  if redis.call('RPUSH', histKey, historyEntry) > hmax then
    redis.call('LTRIM', histKey, -hmax, -1)
  end
end
if finishedAt ~= '' then redis.call('ZADD', finishedKey, finishedAt, instanceID) end
if statusChange ~= '' then redis.call('PUBLISH', statusChannel, statusChange) end
return codeOK
