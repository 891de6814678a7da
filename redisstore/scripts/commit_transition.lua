-- commit_transition: apply one interpreter transition atomically: check
-- the revision is unchanged and acknowledge the work item (trim_work
-- removes acknowledged items in bulk later),
-- then write the state, enqueue the tasks, add and remove timers, withdraw
-- the tasks the instance no longer waits for (it ended, continued as new,
-- dropped a branch, or an attempt timed out), park or requeue its queued
-- tasks when it is suspended or resumed, append history, note a finished
-- instance for retention and publish a status change. Nothing is written
-- unless both checks pass (a redelivered item whose transition is
-- committed already fails the revision check first, then, recomputed, the
-- acknowledgement).
--
-- KEYS, named below (commitKeys in Go, in this order):
--   instKey the instance hash     histKey its history list
--   workKey the work stream       timersKey the timers zset
--   finishedKey the finished zset
--   ackTaskKey the task stream of the task whose outcome this transition
--     consumed directly (ackTaskID; otherwise any key of the partition)
--   countsKey the partition's counts hash ("<workflow>\n<status>" →
--     instances): a commit that changes the runtime status moves one
--     instance from the old status's count to the new one's
--   then one task stream per scheduled task, per cancelled task and per
--   open task, in ARGV order
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
--   taskGroup, ackTaskID: the task entry to acknowledge ('' = none);
--     ackTaskName: its task id (field tk:<task id> of the instance hash)
--   nCancels: the tasks to withdraw (the instance no longer waits for
--     them); withdrawnChannel, withdrawnNotice: the JSON published there
--     when one of them was held by a consumer, so it stops
--   ends: '1' when the instance ends with this commit ('' = not): its
--     withdrawn tasks keep tk:<task id> = '' as a mark, so finish_task and
--     extend_task can tell a holder its instance ended (rather than that
--     the task was completed already)
--   nOpen: the instance's open tasks, listed when it is suspended or
--     resumed: suspending parks the queued ones (out of their stream, into
--     field pk:<task id>), so none is handed out; resuming queues them again
--   workflow: the instance's workflow name (its field of the counts hash)
--   runInput: the new run's input JSON after a continueAsNew, written to
--     the input field GET status shows ('' = leave it)
--   message: the number of the client message the transition applied
--     straight from the API instead of from a work item ('0' = none): the
--     instance must have numbered exactly one fewer (field mseq; none
--     queued waits before it, else codeConflict), and counts this one
--   then nTasks (task JSON (field j), task id) pairs, nTimerAdds (due ms,
--   member) pairs, nTimerRemoves members, nCancels task ids, nOpen task ids.
-- The instance hash field tk:<task id> holds the stream entry id of each
-- task queued or delivered and not yet finished, so a later commit can
-- withdraw it; finish_task drops it; '' marks one withdrawn as the
-- instance ended.
-- A start's first transition, computed on the way in (Engine.CreateInstance),
-- creates the instance in the same script: then ARGV goes on past the
-- variable part with what create_instance writes besides the state (the
-- input JSON, '' = null; the first history entry, the Scheduled line),
-- then the terminal status names, and the last of KEYS is the partition's
-- index zset. There is no revision to check: an unfinished instance of
-- the id refuses it (codeAlreadyRunning), a finished one is replaced (its
-- history dropped), as create_instance does.
-- Returns codeOK committed | codeGone the instance is gone | codeConflict
-- the revision moved (or the instance was replaced) | codeDuplicate the
-- work item was already acknowledged | codeAlreadyRunning (creating) an
-- unfinished instance has this id.
local instKey, histKey, workKey, timersKey, finishedKey, ackTaskKey, countsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local firstTaskKey = 8
local workGroup, workID, fromRev, newRev, status, meta, output, customStatus, runtime, historyMax, statusChannel, statusChange, nTasks, nTimerAdds, nTimerRemoves, historyEntry, finishedAt, instanceID, createdAt, taskGroup, ackTaskID, ackTaskName, nCancels, withdrawnChannel, withdrawnNotice, ends, nOpen, workflow, runInput, message = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16], ARGV[17], ARGV[18], ARGV[19], ARGV[20], ARGV[21], ARGV[22], ARGV[23], ARGV[24], ARGV[25], ARGV[26], ARGV[27], ARGV[28], ARGV[29], ARGV[30]
local firstVarArg = 31
local codeOK, codeConflict, codeDuplicate, codeAlreadyRunning, codeGone = 0, 2, 3, 4, 6

local varEnd = firstVarArg + 2 * tonumber(nTasks) + 2 * tonumber(nTimerAdds) + tonumber(nTimerRemoves) + tonumber(nCancels) + tonumber(nOpen)
local creating = #ARGV >= varEnd + 1
local oldStatus, input, scheduled
if creating then
  input, scheduled = ARGV[varEnd], ARGV[varEnd + 1]
  local cur = redis.call('HMGET', instKey, 'st', 'meta')
  if cur[1] then
    local finished = false
    for i = varEnd + 2, #ARGV do
      if ARGV[i] == cur[1] then finished = true end
    end
    if not finished then return codeAlreadyRunning end
    -- A replaced instance leaves its old workflow's count of its old status.
    local ok, m = pcall(cjson.decode, cur[2] or '')
    local old = ''
    if ok and type(m) == 'table' and type(m.n) == 'string' then old = m.n end
    redis.call('HINCRBY', countsKey, old .. '\n' .. cur[1], -1)
    redis.call('DEL', instKey, histKey)
    redis.call('ZREM', finishedKey, instanceID)
  end
  redis.call('ZADD', KEYS[#KEYS], createdAt, instanceID)
else
  local cur = redis.call('HMGET', instKey, 'rev', 'c', 'st', 'mseq')
  if not cur[1] then return codeGone end
  if cur[1] ~= fromRev then return codeConflict end
  -- (instances created before the c field existed have none to compare)
  if cur[2] and cur[2] ~= createdAt then return codeConflict end
  if message ~= '0' and tonumber(cur[4] or '0') ~= tonumber(message) - 1 then return codeConflict end
  oldStatus = cur[3]
end
if workID ~= '' then
  if redis.call('XACK', workKey, workGroup, workID) == 0 then return codeDuplicate end
end
if ackTaskID ~= '' then
  if redis.call('XACK', ackTaskKey, taskGroup, ackTaskID) == 0 then return codeDuplicate end
  redis.call('XDEL', ackTaskKey, ackTaskID)
  redis.call('HDEL', instKey, 'tk:' .. ackTaskName)
end

-- The tasks go first, so that the one HSET of the state also records
-- their entry ids (no command of its own on the hot path).
local fields = {'st', status, 'rev', newRev, 'meta', meta, 'rt', runtime, 'out', output, 'cs', customStatus}
if creating then
  -- c (created ms) tells this incarnation from an earlier one of the same
  -- id at an equal revision (see the check above).
  fields[#fields + 1], fields[#fields + 2], fields[#fields + 3], fields[#fields + 4] = 'in', input, 'c', createdAt
end
if runInput ~= '' then
  fields[#fields + 1] = 'in'
  fields[#fields + 1] = runInput
end
if message ~= '0' then
  fields[#fields + 1] = 'mseq'
  fields[#fields + 1] = message
end
local k, a = firstTaskKey, firstVarArg
for _ = 1, tonumber(nTasks) do
  local entry = redis.call('XADD', KEYS[k], '*', 'j', ARGV[a])
  fields[#fields + 1] = 'tk:' .. ARGV[a + 1]
  fields[#fields + 1] = entry
  if #fields >= 4000 then -- unpack's limit is far above, but stay well below it
    redis.call('HSET', instKey, unpack(fields))
    fields = {}
  end
  k, a = k + 1, a + 2
end
if #fields > 0 then redis.call('HSET', instKey, unpack(fields)) end

for _ = 1, tonumber(nTimerAdds) do
  redis.call('ZADD', timersKey, ARGV[a], ARGV[a + 1])
  a = a + 2
end
for _ = 1, tonumber(nTimerRemoves) do
  redis.call('ZREM', timersKey, ARGV[a])
  a = a + 1
end

-- Withdraw: a queued entry goes (no read hands it out again), a delivered
-- one is acknowledged too (its holder's heartbeat or outcome then finds
-- it closed). XACK is guarded: a stream never read has no group yet.
local held = false
for _ = 1, tonumber(nCancels) do
  local field = 'tk:' .. ARGV[a]
  local entry = redis.call('HGET', instKey, field)
  if entry and entry ~= '' then
    local acked = redis.pcall('XACK', KEYS[k], taskGroup, entry)
    if acked == 1 then held = true end
    redis.call('XDEL', KEYS[k], entry)
  end
  if ends ~= '' then
    redis.call('HSET', instKey, field, '')
    redis.call('HDEL', instKey, 'pk:' .. ARGV[a])
  else
    redis.call('HDEL', instKey, field, 'pk:' .. ARGV[a])
  end
  k, a = k + 1, a + 1
end
if held and withdrawnNotice ~= '' then redis.call('PUBLISH', withdrawnChannel, withdrawnNotice) end

local suspending = status == 'Suspended' and oldStatus ~= 'Suspended'
local resuming = oldStatus == 'Suspended' and status ~= 'Suspended'
for _ = 1, tonumber(nOpen) do
  local tk, pk = 'tk:' .. ARGV[a], 'pk:' .. ARGV[a]
  if suspending then
    -- Park a queued task; one a consumer holds already runs on.
    local entry = redis.call('HGET', instKey, tk)
    if entry then
      local p = redis.pcall('XPENDING', KEYS[k], taskGroup, entry, entry, 1)
      if type(p) ~= 'table' or #p == 0 then
        local e = redis.call('XRANGE', KEYS[k], entry, entry)
        if #e > 0 then
          redis.call('HSET', instKey, pk, e[1][2][2])
          redis.call('HDEL', instKey, tk)
          redis.call('XDEL', KEYS[k], entry)
        end
      end
    end
  elseif resuming then
    local j = redis.call('HGET', instKey, pk)
    if j then
      redis.call('HSET', instKey, tk, redis.call('XADD', KEYS[k], '*', 'j', j))
      redis.call('HDEL', instKey, pk)
    end
  end
  k, a = k + 1, a + 1
end

local hmax = tonumber(historyMax)
if hmax > 0 and (historyEntry ~= '' or creating) then
  -- Trim only past the bound: one command per transition otherwise.
  local n
  if not creating then
    n = redis.call('RPUSH', histKey, historyEntry)
  elseif historyEntry ~= '' then
    n = redis.call('RPUSH', histKey, scheduled, historyEntry)
  else
    n = redis.call('RPUSH', histKey, scheduled)
  end
  if n > hmax then
    redis.call('LTRIM', histKey, -hmax, -1)
  end
end
if finishedAt ~= '' then redis.call('ZADD', finishedKey, finishedAt, instanceID) end
if oldStatus ~= status then
  -- Two commands (one when creating), and only when the status changes:
  -- no round trip.
  if oldStatus then redis.call('HINCRBY', countsKey, workflow .. '\n' .. oldStatus, -1) end
  redis.call('HINCRBY', countsKey, workflow .. '\n' .. status, 1)
end
if statusChange ~= '' then redis.call('PUBLISH', statusChannel, statusChange) end
return codeOK
