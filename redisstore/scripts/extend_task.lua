-- extend_task: set the idle time of a task the consumer still holds. A
-- heartbeat sets it to 0 (the lease starts again, so it is not reclaimed);
-- handing a task back sets it to a very long time, so the next reclaim by
-- any consumer takes it at once. The owner check makes both safe against a
-- consumer whose lease already expired: it cannot take the task back from
-- its new holder.
--
-- KEYS[1] task stream     KEYS[2] instance hash
-- ARGV[1] task group   ARGV[2] consumer   ARGV[3] task entry id
-- ARGV[4] idle time to set, ms (0 = a heartbeat)
-- ARGV[5] task id (field tk:<task id> of the instance hash)
-- Returns 0 done | 1 the task is closed (completed, failed, or withdrawn
-- while its instance runs on: an attempt timed out, a branch was dropped)
-- | 2 the task is open but another consumer holds it now (this consumer's
-- lease expired and it was reclaimed) | 8 the task's instance has ended
-- (the commit that ended it withdrew the task, leaving the mark
-- tk:<task id> = '') or is gone.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 then
  local v = redis.call('HMGET', KEYS[2], 'st', 'tk:' .. ARGV[5])
  if not v[1] or v[2] == '' then return 8 end
  return 1
end
if p[1][2] ~= ARGV[2] then return 2 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 0
