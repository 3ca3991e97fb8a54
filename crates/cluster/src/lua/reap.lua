-- Remove a dead node's member from a room, unless the member is now
-- connected to another node (recovered there: its entry names that node).
-- A room left empty loses its password.
-- KEYS[1] room hash, KEYS[2] room password key; ARGV[1] sid, ARGV[2] dead node
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local ok, entry = pcall(cjson.decode, v)
if ok and type(entry) == 'table' and entry.node ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
return 1
