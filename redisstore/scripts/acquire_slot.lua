-- acquire_slot: take one slot of a counting semaphore kept as a zset of
-- holders scored by the unix ms their lease ends. Leases that ended are
-- dropped first, so the slots of a holder that died come back once its
-- lease passes. A holder that holds a slot already keeps it, its lease
-- restarted.
--
-- KEYS[1] slots zset
-- ARGV[1] holder   ARGV[2] limit   ARGV[3] now, unix ms
-- ARGV[4] lease end, unix ms
-- Returns 1 taken (or held already) | 0 all limit slots are held.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
return 1
