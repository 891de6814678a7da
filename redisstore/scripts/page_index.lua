-- page_index: read the next entries of an index zset in (score, member)
-- order strictly after a cursor, without Lua string comparisons (whose
-- order follows the server's locale): members compare bytewise, as Redis
-- orders them.
--
-- KEYS[1] index zset
-- ARGV[1] cursor score   ARGV[2] cursor member ('' = every member of that
-- score is after the cursor)
-- ARGV[3] max score ('' = no bound)   ARGV[4] max entries
-- Returns {member1, score1, member2, score2, ...}.
local function lesseq(a, b) -- a <= b bytewise
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a <= #b
end

local s, m = ARGV[1], ARGV[2]
local count = tonumber(ARGV[4])
local first
local r = nil
if m ~= '' then r = redis.call('ZRANK', KEYS[1], m) end
if r and tonumber(redis.call('ZSCORE', KEYS[1], m)) == tonumber(s) then
  first = r + 1
else
  -- first rank with score >= s, then skip members <= m within score s
  local lo = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. s)
  local hi = lo + redis.call('ZCOUNT', KEYS[1], s, s)
  if m ~= '' then
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local x = redis.call('ZRANGE', KEYS[1], mid, mid)[1]
      if lesseq(x, m) then lo = mid + 1 else hi = mid end
    end
  end
  first = lo
end
local items = redis.call('ZRANGE', KEYS[1], first, first + count - 1, 'WITHSCORES')
local max = nil
if ARGV[3] ~= '' then max = tonumber(ARGV[3]) end
local out = {}
for i = 1, #items, 2 do
  if max and tonumber(items[i + 1]) > max then break end
  out[#out + 1] = items[i]
  out[#out + 1] = items[i + 1]
end
return out
