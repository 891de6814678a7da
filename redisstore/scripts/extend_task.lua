-- extend_task: a heartbeat. Reset the idle time of a task the consumer
-- still holds, so it is not reclaimed.
--
-- KEYS[1] task stream
-- ARGV[1] task group   ARGV[2] consumer   ARGV[3] task entry id
-- Returns 0 extended | 1 the task is closed (completed, failed, or its
-- instance purged) | 2 the task is open but another consumer holds it now
-- (this consumer's lease expired and it was reclaimed).
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 then return 1 end
if p[1][2] ~= ARGV[2] then return 2 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 0
