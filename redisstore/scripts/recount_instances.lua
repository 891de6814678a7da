-- recount_instances: rebuild one partition's counts hash from its
-- instances, once: for data written before the counts existed. The caller
-- read the partition's index in an earlier round trip; the count is made
-- only if the index still holds exactly those ids (same size, each one
-- there), so an instance created or deleted in between sends the caller
-- back to read again instead of leaving the count off by one. Whoever
-- counts first sets the marker; every later call (another engine starting
-- at the same time) leaves the hash alone.
--
-- KEYS[1] counts hash   KEYS[2] index zset
-- KEYS[2+i] instance hash of candidate i
-- ARGV[1] marker field   ARGV[2] marker value (unix ms, counted since)
-- ARGV[3..] candidate instance ids, in KEYS order
-- Returns -1 counted already | -2 the index changed: read it again |
-- n >= 0 the instances counted.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
local n = #ARGV - 2
if redis.call('ZCARD', KEYS[2]) ~= n then return -2 end
local counts = {}
for i = 1, n do
  if not redis.call('ZSCORE', KEYS[2], ARGV[2 + i]) then return -2 end
  local cur = redis.call('HMGET', KEYS[2 + i], 'st', 'meta')
  if cur[1] then
    local ok, m = pcall(cjson.decode, cur[2] or '')
    local name = ''
    if ok and type(m) == 'table' and type(m.n) == 'string' then name = m.n end
    local f = name .. '\n' .. cur[1]
    counts[f] = (counts[f] or 0) + 1
  end
end
redis.call('DEL', KEYS[1])
for f, c in pairs(counts) do redis.call('HSET', KEYS[1], f, c) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return n
