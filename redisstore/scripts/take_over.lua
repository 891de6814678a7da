-- take_over: move what a dead consumer holds in one stream's consumer
-- group to a live one, whatever its idle time, and once the dead consumer
-- holds nothing there any more remove it from the group. Entries are
-- claimed before XGROUP DELCONSUMER, which would otherwise drop them from
-- the pending list for good.
--
-- KEYS[1] stream
-- ARGV[1] group     ARGV[2] dead consumer     ARGV[3] taker
-- ARGV[4] max entries to move
-- ARGV[5] idle ms to give the moved entries: "" leaves them just
--         delivered to the taker (work items it applies at once); a large
--         value hands them to whichever consumer reclaims next (activity
--         tasks, run by the activity runtimes), and only their ids are
--         returned
-- Returns {done, entry...}: done 1 when the dead consumer holds nothing
-- more in this group (it was removed from it, or the group or stream does
-- not exist), else 0; then the moved entries (XCLAIM's reply).
local pend = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[4]), ARGV[2])
if type(pend) == 'table' and pend.err then
  if string.find(pend.err, 'NOGROUP', 1, true) then return {1} end
  return pend
end
local ids = {}
for i, e in ipairs(pend) do ids[i] = e[1] end
local out = {0}
if #ids > 0 then
  -- unpack expands only as the last argument, so the call is built whole.
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0}
  for _, id in ipairs(ids) do args[#args + 1] = id end
  if ARGV[5] ~= '' then
    args[#args + 1] = 'IDLE'
    args[#args + 1] = ARGV[5]
    args[#args + 1] = 'JUSTID'
  end
  local claimed = redis.call(unpack(args))
  for i, c in ipairs(claimed) do out[i + 1] = c end
end
if #ids < tonumber(ARGV[4]) then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  out[1] = 1
end
return out
