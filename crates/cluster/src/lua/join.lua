-- Join a room atomically: cap, password, snapshot, add.
-- KEYS[1] room hash (sid -> peer JSON with "seq"), KEYS[2] room password key
-- ARGV[1] sid, ARGV[2] peer JSON without "seq", ARGV[3] cap (0: none),
-- ARGV[4] "salt:sha256hex" of the given password ("" when none),
-- ARGV[5] expiry in ms, ARGV[6] "join" or "restore" (no cap, no password)
-- Answers {"ok", sid1, json1, sid2, json2, ...} (the members before, in join
-- order), {"room-full"}, {"password-required"}, {"wrong-password"}, or
-- {"salt", stored_salt} when the password must be hashed with another salt.
local room, pwkey = KEYS[1], KEYS[2]
local sid, peer, cap, given, ttl, mode =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]

local all = redis.call('HGETALL', room)
local members, maxseq, mine = {}, 0, nil
for i = 1, #all, 2 do
  local ok, v = pcall(cjson.decode, all[i + 1])
  local seq = 0
  if ok and type(v) == 'table' then seq = tonumber(v.seq) or 0 end
  if seq > maxseq then maxseq = seq end
  if all[i] == sid then
    mine = seq
  else
    members[#members + 1] = { all[i], all[i + 1], seq }
  end
end

if mode == 'join' and mine == nil then
  if cap > 0 and #members >= cap then return { 'room-full' } end
  if #members == 0 then
    -- The first joiner of an empty room sets its password (or none).
    if given == '' then
      redis.call('DEL', pwkey)
    else
      redis.call('SET', pwkey, given, 'PX', ttl)
    end
  else
    local stored = redis.call('GET', pwkey)
    if stored then
      if given == '' then return { 'password-required' } end
      local ssalt = string.match(stored, '^([^:]*):') or ''
      local gsalt = string.match(given, '^([^:]*):') or ''
      if ssalt ~= gsalt then return { 'salt', ssalt } end
      if stored ~= given then return { 'wrong-password' } end
      redis.call('PEXPIRE', pwkey, ttl)
    end
  end
end

table.sort(members, function(a, b)
  if a[3] == b[3] then return a[1] < b[1] end
  return a[3] < b[3]
end)
local entry = cjson.decode(peer)
entry.seq = mine or (maxseq + 1)
redis.call('HSET', room, sid, cjson.encode(entry))
redis.call('PEXPIRE', room, ttl)
if mode == 'restore' and redis.call('EXISTS', pwkey) == 1 then
  redis.call('PEXPIRE', pwkey, ttl)
end
local out = { 'ok' }
for _, m in ipairs(members) do
  out[#out + 1] = m[1]
  out[#out + 1] = m[2]
end
return out
