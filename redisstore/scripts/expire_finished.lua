-- expire_finished: delete finished instances that retention no longer
-- keeps: their hash, history, index entry and retention entry. The caller
-- picked the candidates from the finished zset in an earlier read; each is
-- deleted only if it is still there with the same finished time and still
-- finished (a replaced or purged instance is left alone).
--
-- KEYS[1] finished zset   KEYS[2] index zset   KEYS[3] counts hash
-- KEYS[2i+2], KEYS[2i+3] instance hash and history list of candidate i
-- ARGV[1] n terminal statuses   ARGV[2 .. 1+n] the terminal status names
-- ARGV[2+n ..] (id, finished unix ms) pairs, in KEYS order
-- Returns the number of instances deleted.
local n = tonumber(ARGV[1])
local deleted = 0
local c = 0
for a = 2 + n, #ARGV, 2 do
  c = c + 1
  local id = ARGV[a]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) == tonumber(ARGV[a + 1]) then
    local cur = redis.call('HMGET', KEYS[2 * c + 2], 'st', 'meta')
    local st = cur[1]
    local finished = false
    for i = 2, 1 + n do
      if ARGV[i] == st then finished = true end
    end
    if finished then
      local dec, m = pcall(cjson.decode, cur[2] or '')
      local name = ''
      if dec and type(m) == 'table' and type(m.n) == 'string' then name = m.n end
      redis.call('HINCRBY', KEYS[3], name .. '\n' .. st, -1)
      redis.call('DEL', KEYS[2 * c + 2], KEYS[2 * c + 3])
      redis.call('ZREM', KEYS[2], id)
      deleted = deleted + 1
    end
    -- Finished or not (an instance is noted only when it finishes, and
    -- un-noted when replaced), the entry has served.
    redis.call('ZREM', KEYS[1], id)
  end
end
return deleted
