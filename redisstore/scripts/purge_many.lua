-- purge_many: delete those of the given instances of one partition whose
-- status is one of the given ones and whose index score lies in a range.
--
-- KEYS[1] index zset   KEYS[2] finished zset   KEYS[3] counts hash
-- KEYS[2i+2], KEYS[2i+3] instance hash and history list of candidate i
-- ARGV[1] min created ms   ARGV[2] max created ms ('' = no bound)
-- ARGV[3] n statuses       ARGV[4 .. 3+n] the statuses to purge
-- ARGV[4+n ..] candidate instance ids, in KEYS order
-- Returns the number of instances deleted.
local n = tonumber(ARGV[3])
local lo = tonumber(ARGV[1])
local hi = nil
if ARGV[2] ~= '' then hi = tonumber(ARGV[2]) end
local deleted = 0
local c = 0
for a = 4 + n, #ARGV do
  c = c + 1
  local id = ARGV[a]
  local cur = redis.call('HMGET', KEYS[2 * c + 2], 'st', 'meta')
  local st = cur[1]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if st and score then
    score = tonumber(score)
    local ok = score >= lo and (hi == nil or score <= hi)
    if ok then
      ok = false
      for i = 4, 3 + n do
        if ARGV[i] == st then ok = true end
      end
    end
    if ok then
      local dec, m = pcall(cjson.decode, cur[2] or '')
      local name = ''
      if dec and type(m) == 'table' and type(m.n) == 'string' then name = m.n end
      redis.call('HINCRBY', KEYS[3], name .. '\n' .. st, -1)
      redis.call('DEL', KEYS[2 * c + 2], KEYS[2 * c + 3])
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
      deleted = deleted + 1
    end
  end
end
return deleted
