-- Take a member out of rooms; a room left empty loses its password unless kept.
-- The member goes unless its entry names a node other than `node`: a socket
-- that meanwhile joined again through another node (recovered there) keeps
-- its place, in whatever order the two nodes' writes reach Redis. The reaper
-- of a dead node uses it with the dead node's id.
-- KEYS: room hash 1, password key 1, room hash 2, password key 2, ...
-- ARGV[1] sid ("" to only drop the passwords of empty rooms),
-- ARGV[2] "1" to keep passwords, ARGV[3] node
for i = 1, #KEYS, 2 do
  if ARGV[1] ~= '' then
    local v = redis.call('HGET', KEYS[i], ARGV[1])
    if v then
      local ok, entry = pcall(cjson.decode, v)
      local elsewhere = ok and type(entry) == 'table' and type(entry.node) == 'string'
        and entry.node ~= ARGV[3]
      if not elsewhere then redis.call('HDEL', KEYS[i], ARGV[1]) end
    end
  end
  if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('DEL', KEYS[i + 1])
  end
end
return 1
