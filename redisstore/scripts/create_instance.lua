-- create_instance: write a new instance with its start work item, or
-- replace a finished instance of the same id (its history is dropped).
--
-- KEYS[1] instance hash        KEYS[2] history list
-- KEYS[3] partition index zset KEYS[4] partition work stream
-- KEYS[5] partition finished zset KEYS[6] partition counts hash
-- ARGV[1] instance id          ARGV[2] status
-- ARGV[3] revision             ARGV[4] meta JSON
-- ARGV[5] input JSON ('' = null)
-- ARGV[6] runtime JSON
-- ARGV[7] created time, unix ms (index score)
-- ARGV[8] start event JSON (work item field e)
-- ARGV[9] history max entries (0 = keep no history)
-- ARGV[10] first history entry (a JSON array of lines)
-- ARGV[11] workflow name (its count of ARGV[2] goes up by one)
-- ARGV[12..] the terminal status names
-- The counts hash holds the instances per "<workflow>\n<status>"; a
-- replaced instance leaves its old workflow's count of its old status.
-- Returns 0 created | 4 an unfinished instance has this id.
local cur = redis.call('HMGET', KEYS[1], 'st', 'meta')
local st = cur[1]
if st then
  local finished = false
  for i = 12, #ARGV do
    if ARGV[i] == st then finished = true end
  end
  if not finished then return 4 end
  local ok, m = pcall(cjson.decode, cur[2] or '')
  local old = ''
  if ok and type(m) == 'table' and type(m.n) == 'string' then old = m.n end
  redis.call('HINCRBY', KEYS[6], old .. '\n' .. st, -1)
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
redis.call('HINCRBY', KEYS[6], ARGV[11] .. '\n' .. ARGV[2], 1)
-- c (created ms) tells this incarnation from an earlier one of the same
-- id at an equal revision: commit_transition checks it.
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'rev', ARGV[3], 'meta', ARGV[4], 'rt', ARGV[6],
  'in', ARGV[5], 'c', ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'i', ARGV[1], 'e', ARGV[8])
local hmax = tonumber(ARGV[9])
if hmax > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[10])
end
return 0
