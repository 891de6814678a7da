-- signal_with_start: raise an event into an instance, starting it first
-- when no unfinished instance has its id, in one step: two concurrent calls
-- start it once and queue both events.
--
-- KEYS and ARGV[1..11] as create_instance's (the instance to start when
-- none runs); ARGV[12] the event JSON (work item field e); ARGV[13..] the
-- terminal status names.
-- Returns 0 started (the event queued right after the start item) | 9 the
-- event was queued for the unfinished instance that has the id.
local cur = redis.call('HMGET', KEYS[1], 'st', 'meta')
local st = cur[1]
if st then
  local finished = false
  for i = 13, #ARGV do
    if ARGV[i] == st then finished = true end
  end
  if not finished then
    -- As enqueue_event: the instance's next message number.
    local q = redis.call('HINCRBY', KEYS[1], 'mseq', 1)
    redis.call('XADD', KEYS[4], '*', 'i', ARGV[1], 'e', ARGV[12], 'q', q)
    return 9
  end
  -- A finished instance is replaced, as create_instance does.
  local ok, m = pcall(cjson.decode, cur[2] or '')
  local old = ''
  if ok and type(m) == 'table' and type(m.n) == 'string' then old = m.n end
  redis.call('HINCRBY', KEYS[6], old .. '\n' .. st, -1)
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
redis.call('HINCRBY', KEYS[6], ARGV[11] .. '\n' .. ARGV[2], 1)
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'rev', ARGV[3], 'meta', ARGV[4], 'rt', ARGV[6],
  'in', ARGV[5], 'c', ARGV[7], 'mseq', 1)
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'i', ARGV[1], 'e', ARGV[8])
redis.call('XADD', KEYS[4], '*', 'i', ARGV[1], 'e', ARGV[12], 'q', 1)
local hmax = tonumber(ARGV[9])
if hmax > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[10])
end
return 0
