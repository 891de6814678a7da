-- describe_definition: the latest hash and every version's created time of
-- one workflow definition, without reading its sources out.
--
-- KEYS[1] definition hash
-- ARGV[1] created-time field prefix ("t:")   ARGV[2] latest field ("latest")
-- Returns {latest, hash1, created ms 1, hash2, created ms 2, ...}; an
-- empty array when there is no such definition.
local fields = redis.call('HKEYS', KEYS[1])
if #fields == 0 then return {} end
local pre = ARGV[1]
local want = {ARGV[2]}
for _, f in ipairs(fields) do
  if string.sub(f, 1, #pre) == pre then want[#want + 1] = f end
end
local vals = redis.call('HMGET', KEYS[1], unpack(want))
local out = {vals[1] or ''}
for i = 2, #want do
  out[#out + 1] = string.sub(want[i], #pre + 1)
  out[#out + 1] = vals[i] or '0'
end
return out
