-- trim_work: drop the work items of a partition that every engine has
-- acknowledged, in one XTRIM, instead of one XDEL per commit. Entries still
-- pending (delivered, not acknowledged) and entries not yet delivered stay.
--
-- KEYS[1] work stream
-- ARGV[1] work group
-- Returns the number of entries removed.
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local last
for _, g in ipairs(groups) do
  local name, delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if name == ARGV[1] then last = delivered end
end
if not last or last == '0-0' then return 0 end
local minid
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 then
  minid = pending[2]
else
  -- Everything up to the last delivered entry is acknowledged: keep what
  -- comes after it.
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  minid = ms .. '-' .. (tonumber(seq) + 1)
end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
