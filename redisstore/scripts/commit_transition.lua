-- commit_transition: apply one interpreter transition atomically: check
-- the revision is unchanged and acknowledge the work item (trim_work
-- removes acknowledged items in bulk later),
-- then write the state, enqueue the tasks, add and remove timers, append
-- history, note a finished instance for retention and publish a status
-- change. Nothing is written unless both checks pass (a redelivered item
-- whose transition is committed already fails the revision check first,
-- then, recomputed, the acknowledgement).
--
-- KEYS[1] instance hash   KEYS[2] history list
-- KEYS[3] work stream     KEYS[4] timers zset
-- KEYS[5] finished zset
-- KEYS[6] the task stream of the task whose outcome this transition
-- consumed directly (ARGV[21]; otherwise any key of the partition)
-- KEYS[7..] one task stream per scheduled task, in ARGV order
-- ARGV[1] work group         ARGV[2] work item id ('' = none)
-- ARGV[3] from revision      ARGV[4] new revision
-- ARGV[5] status             ARGV[6] meta JSON
-- ARGV[7] output ('' = null)     ARGV[8] custom status ('' = never set)
-- (stored as '' too: one HSET writes every field)
-- ARGV[9] runtime JSON
-- ARGV[10] history max entries (0 = keep no history)
-- ARGV[11] status channel    ARGV[12] status change JSON ('' = publish nothing)
-- ARGV[13] n tasks  ARGV[14] n timers to add  ARGV[15] n timers to remove
-- ARGV[16] history entry: the transition's lines as a JSON array ('' = none)
-- ARGV[17] finished unix ms: the instance finishes now and retention is
-- on ('' = neither)   ARGV[18] instance id
-- ARGV[19] the instance's created unix ms: with the revision, it names the
-- state the transition was computed from (an engine may compute on a
-- cached state, and an instance replaced under its id restarts its
-- revisions)
-- ARGV[20] task group   ARGV[21] entry id of the task to acknowledge ('' = none)
-- then n tasks task JSONs (field j), n adds (due ms, member) pairs,
-- n removes members.
-- Returns 0 committed | 6 the instance is gone | 2 the revision moved (or
-- the instance was replaced) | 3 the work item was already acknowledged.
local cur = redis.call('HMGET', KEYS[1], 'rev', 'c')
if not cur[1] then return 6 end
if cur[1] ~= ARGV[3] then return 2 end
-- (instances created before the c field existed have none to compare)
if cur[2] and cur[2] ~= ARGV[19] then return 2 end
if ARGV[2] ~= '' then
  if redis.call('XACK', KEYS[3], ARGV[1], ARGV[2]) == 0 then return 3 end
end
if ARGV[21] ~= '' then
  if redis.call('XACK', KEYS[6], ARGV[20], ARGV[21]) == 0 then return 3 end
  redis.call('XDEL', KEYS[6], ARGV[21])
end

redis.call('HSET', KEYS[1], 'st', ARGV[5], 'rev', ARGV[4], 'meta', ARGV[6], 'rt', ARGV[9],
  'out', ARGV[7], 'cs', ARGV[8])

local ntasks, nadd, nrem = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local a = 22
for i = 1, ntasks do
  redis.call('XADD', KEYS[6 + i], '*', 'j', ARGV[a])
  a = a + 1
end
for _ = 1, nadd do
  redis.call('ZADD', KEYS[4], ARGV[a], ARGV[a + 1])
  a = a + 2
end
for _ = 1, nrem do
  redis.call('ZREM', KEYS[4], ARGV[a])
  a = a + 1
end
local hmax = tonumber(ARGV[10])
if hmax > 0 and ARGV[16] ~= '' then
  -- Trim only past the bound: one command per transition otherwise.
  if redis.call('RPUSH', KEYS[2], ARGV[16]) > hmax then
    redis.call('LTRIM', KEYS[2], -hmax, -1)
  end
end
if ARGV[17] ~= '' then redis.call('ZADD', KEYS[5], ARGV[17], ARGV[18]) end
if ARGV[12] ~= '' then redis.call('PUBLISH', ARGV[11], ARGV[12]) end
return 0
