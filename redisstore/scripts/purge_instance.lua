-- purge_instance: delete a finished instance, its history, its index
-- entry and its retention entry.
--
-- KEYS[1] instance hash   KEYS[2] history list   KEYS[3] index zset
-- KEYS[4] finished zset
-- ARGV[1] instance id     ARGV[2..] the terminal status names
-- Returns 0 purged | 1 no such instance | 7 the instance is not finished.
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return 1 end
for i = 2, #ARGV do
  if ARGV[i] == st then
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[1])
    redis.call('ZREM', KEYS[4], ARGV[1])
    return 0
  end
end
return 7
