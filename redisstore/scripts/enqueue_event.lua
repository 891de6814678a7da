-- enqueue_event: queue a work item (raised event or control message) for
-- an existing, unfinished instance.
--
-- KEYS[1] instance hash   KEYS[2] work stream
-- ARGV[1] instance id     ARGV[2] event JSON (work item field e)
-- ARGV[3..] the terminal status names
-- Returns 0 queued | 1 no such instance | 5 the instance is finished.
--
-- Each queued message gets the instance's next message number (hash field
-- mseq, reset when the instance is replaced) in work item field q, so the
-- interpreter applies an instance's messages in the order accepted here.
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return 1 end
for i = 3, #ARGV do
  if ARGV[i] == st then return 5 end
end
local q = redis.call('HINCRBY', KEYS[1], 'mseq', 1)
redis.call('XADD', KEYS[2], '*', 'i', ARGV[1], 'e', ARGV[2], 'q', q)
return 0
