-- purge_instance: delete a finished instance, its history, its index
-- entry and its retention entry.
--
-- KEYS[1] instance hash   KEYS[2] history list   KEYS[3] index zset
-- KEYS[4] finished zset  KEYS[5] counts hash (the instance's count goes
-- down by one)
-- ARGV[1] instance id     ARGV[2..] the terminal status names
-- Returns 0 purged | 1 no such instance | 7 the instance is not finished.
local cur = redis.call('HMGET', KEYS[1], 'st', 'meta')
local st = cur[1]
if not st then return 1 end
for i = 2, #ARGV do
  if ARGV[i] == st then
    local ok, m = pcall(cjson.decode, cur[2] or '')
    local name = ''
    if ok and type(m) == 'table' and type(m.n) == 'string' then name = m.n end
    redis.call('HINCRBY', KEYS[5], name .. '\n' .. st, -1)
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[1])
    redis.call('ZREM', KEYS[4], ARGV[1])
    return 0
  end
end
return 7
