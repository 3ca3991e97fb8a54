-- Replace what rooms know of a member (name, media-state), keeping its join
-- order; rooms it is not a member of (any more) are left alone.
-- KEYS: room hashes; ARGV[1] sid, ARGV[2] peer JSON without "seq"
for _, key in ipairs(KEYS) do
  local old = redis.call('HGET', key, ARGV[1])
  if old then
    local entry = cjson.decode(ARGV[2])
    local ok, prev = pcall(cjson.decode, old)
    if ok and type(prev) == 'table' then entry.seq = prev.seq end
    redis.call('HSET', key, ARGV[1], cjson.encode(entry))
  end
end
return 1
