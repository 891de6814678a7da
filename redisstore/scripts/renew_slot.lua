-- renew_slot: restart the lease of a semaphore slot its holder still
-- holds (see acquire_slot.lua). A slot whose lease ended may have been
-- dropped and given to another holder: it is not taken back.
--
-- KEYS[1] slots zset
-- ARGV[1] holder   ARGV[2] now, unix ms   ARGV[3] lease end, unix ms
-- Returns 1 renewed | 0 the holder holds no live slot.
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) <= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
