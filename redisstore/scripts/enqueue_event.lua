-- enqueue_event: queue a work item (raised event or control message) for
-- an existing, unfinished instance.
--
-- KEYS[1] instance hash   KEYS[2] work stream
-- ARGV[1] instance id     ARGV[2] event JSON (work item field e)
-- ARGV[3..] the terminal status names
-- Returns 0 queued | 1 no such instance | 5 the instance is finished.
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return 1 end
for i = 3, #ARGV do
  if ARGV[i] == st then return 5 end
end
redis.call('XADD', KEYS[2], '*', 'i', ARGV[1], 'e', ARGV[2])
return 0
