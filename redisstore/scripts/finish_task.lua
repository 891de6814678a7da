-- finish_task: acknowledge (and delete) an activity task and queue its
-- completion or failure as a work item of its instance. A task already
-- acknowledged queues nothing: a duplicate completion, or a task withdrawn
-- by the commit that ended its instance (which left the mark
-- tk:<task id> = ''), or one whose instance is gone.
--
-- KEYS[1] task stream     KEYS[2] work stream     KEYS[3] instance hash
-- ARGV[1] task group      ARGV[2] task entry id
-- ARGV[3] instance id     ARGV[4] event JSON (work item field e)
-- ARGV[5] task id (field tk:<task id> of the instance hash)
-- Returns 0 queued | 3 the task was already acknowledged | 8 the task's
-- instance has ended (the task was withdrawn) or is gone.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  local v = redis.call('HMGET', KEYS[3], 'st', 'tk:' .. ARGV[5])
  if not v[1] or v[2] == '' then return 8 end
  return 3
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], 'tk:' .. ARGV[5])
redis.call('XADD', KEYS[2], '*', 'i', ARGV[3], 'e', ARGV[4])
return 0
