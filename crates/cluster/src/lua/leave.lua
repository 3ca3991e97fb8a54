-- Take a member out of rooms; a room left empty loses its password unless kept.
-- KEYS: room hash 1, password key 1, room hash 2, password key 2, ...
-- ARGV[1] sid ("" to only drop the passwords of empty rooms), ARGV[2] "1" to keep passwords
for i = 1, #KEYS, 2 do
  if ARGV[1] ~= '' then redis.call('HDEL', KEYS[i], ARGV[1]) end
  if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('DEL', KEYS[i + 1])
  end
end
return 1
