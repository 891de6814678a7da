-- probe_task: say whether an activity task is still open and whether a
-- consumer holds it, for the watch of its attempt (interpreter watch.go).
-- Only reads.
--
-- KEYS[1] task stream     KEYS[2] instance hash
-- ARGV[1] task group      ARGV[2] task id (fields tk:/pk:<task id>)
-- Returns {0} closed (finished or withdrawn) | {1} queued (or parked
-- while its instance is suspended) | {2, idle ms} delivered to a
-- consumer, idle since its delivery or its holder's last heartbeat (a
-- task handed back has a huge idle time; the caller tells).
local v = redis.call('HMGET', KEYS[2], 'tk:' .. ARGV[2], 'pk:' .. ARGV[2])
if v[2] then return {1} end
if not v[1] or v[1] == '' then return {0} end
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], v[1], v[1], 1)
if type(p) ~= 'table' or p.err or #p == 0 then return {1} end
return {2, p[1][3]}
