-- fire_timers: move timers due at or before now, earliest first, from the
-- timers zset to the work stream.
--
-- KEYS[1] timers zset   KEYS[2] work stream
-- ARGV[1] now, unix ms  ARGV[2] max timers to move
-- ARGV[3] event kind of a fired timer   ARGV[4] now, RFC 3339 (event time)
-- A member is "<instance id>\n<timer id>"; the work item is
-- i = instance id, e = {"k": kind, "t": time, "timer": timer id}.
-- Returns {moved, due ms of the next timer left or -1 when none}.
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do
  local sep = string.find(m, '\n', 1, true)
  if sep then
    local ev = cjson.encode({k = ARGV[3], t = ARGV[4], timer = string.sub(m, sep + 1)})
    redis.call('XADD', KEYS[2], '*', 'i', string.sub(m, 1, sep - 1), 'e', ev)
  end
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then return {#due, -1} end
return {#due, tonumber(nxt[2])}
