-- save_schedule: store one schedule's state if its revision did not move.
--
-- KEYS[1] schedules hash (field: schedule id, value: state JSON with rev)
-- ARGV[1] schedule id
-- ARGV[2] the revision the caller read (0 = none stored)
-- ARGV[3] the new state JSON, whose rev is ARGV[2] + 1
-- Returns 0 stored | 2 the stored revision is not ARGV[2].
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local rev = 0
if cur then
  rev = tonumber(cjson.decode(cur).rev) or 0
end
if rev ~= tonumber(ARGV[2]) then
  return 2
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 0
