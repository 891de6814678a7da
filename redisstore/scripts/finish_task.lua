-- finish_task: acknowledge (and delete) an activity task and queue its
-- completion or failure as a work item of its instance. A task already
-- acknowledged (a duplicate completion) queues nothing.
--
-- KEYS[1] task stream     KEYS[2] work stream
-- ARGV[1] task group      ARGV[2] task entry id
-- ARGV[3] instance id     ARGV[4] event JSON (work item field e)
-- Returns 0 queued | 3 the task was already acknowledged.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 3 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'i', ARGV[3], 'e', ARGV[4])
return 0
