"""The Lua scripts of the Redis coordinator, and their EVALSHA-with-fallback caller.

Times inside the scripts are integer microseconds. By default they come from the Redis server's
own clock (``TIME``): the processes of a fleet run on different hosts whose clocks disagree, and
their monotonic clocks are not comparable at all, so the one clock every caller shares is the
server's. (Redis 7 replicates a script's effects, not the script, so ``TIME`` is allowed.) The
limiter also takes a caller's time, for deterministic tests; then every caller of that key must
use the same clock. The arithmetic is ``core.ratelimit.Gcra.hit`` and ``coord.local.pace``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

# KEYS: one cell per check. ARGV[1]: the caller's now (µs) or ''; then for each check in turn
# its emission (µs), burst tolerance (µs) and cost. The checks run in order (a key given twice
# sees its first check's effect), all at one reading of the clock. Returns, flat, for each check
# {allowed (0/1), retry_after (µs), remaining}: a batch of checks is one command, so the client
# packs and parses one call however many requests one turn of its event loop let in.
GCRA = """
local now
if ARGV[1] ~= nil and ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local out = {}
for i, key in ipairs(KEYS) do
  local emission = tonumber(ARGV[3 * i - 1])
  local tolerance = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local tat = now
  local stored = redis.call('GET', key)
  if stored then tat = math.max(tonumber(stored), now) end
  local new_tat = tat + emission * cost
  local allow_at = new_tat - tolerance - emission
  if allow_at > now then
    out[#out + 1] = 0
    out[#out + 1] = math.ceil(allow_at - now)
    out[#out + 1] = 0
  else
    redis.call('SET', key, string.format('%.0f', new_tat),
               'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
    out[#out + 1] = 1
    out[#out + 1] = 0
    out[#out + 1] = math.max(0, math.floor((tolerance + emission - (new_tat - now)) / emission))
  end
end
return out
"""

# KEYS[1] a sorted set of members by last seen (µs). ARGV: member, window (µs), most members,
# add (1: record the member when admitted), caller's now (µs) or ''. Admits a member already in
# the window, or any while fewer than most are. Returns {admitted (0/1), retry_after (µs), count}.
DISTINCT = """
local member = ARGV[1]
local window = tonumber(ARGV[2])
local most = tonumber(ARGV[3])
local add = tonumber(ARGV[4]) == 1
local now
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], member) and count >= most then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.ceil(tonumber(oldest[2]) + window - now), count}
end
if add then
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
end
return {1, 0, count}
"""

# KEYS[1] the connector's cell, KEYS[2] its lowered rate. ARGV: rate, burst, want, horizon (µs).
# Returns {retry_after (µs, when nothing granted), {offset of each granted slot from now (µs)},
# the rate used (a string: Lua would truncate a float to an integer)}.
PACE = """
local rate = tonumber(ARGV[1])
local lowered = redis.call('GET', KEYS[2])
if lowered and tonumber(lowered) < rate then rate = tonumber(lowered) end
local emission = 1000000 / rate
local tolerance = emission * (tonumber(ARGV[2]) - 1)
local want = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then tat = math.max(tonumber(stored), now) end
local out = {}
while #out < want do
  local allow_at = tat - tolerance
  if allow_at > now + horizon then break end
  out[#out + 1] = math.ceil(math.max(0, allow_at - now))
  tat = tat + emission
end
local used = string.format('%.17g', rate)
if #out > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat),
             'PX', math.max(1, math.ceil((tat - now) / 1000)))
  return {0, out, used}
end
if want <= 0 then return {0, out, used} end
return {math.ceil(tat - tolerance - now - horizon), out, used}
"""

# KEYS[1] the lowered-rate key. ARGV: rate, ttl (ms). A lower rate in force is kept.
LOWER_RATE = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: the connector's slot keys in order. ARGV: owner, ttl (ms). Returns the slot index or -1.
ACQUIRE = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    return i - 1
  end
end
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then return i - 1 end
end
return -1
"""

# KEYS[1] the slot key. ARGV: owner, ttl (ms). Returns 1 when renewed; a slot nobody holds
# (Redis lost its keys, or the lease ran out with no one taking it) is taken again.
RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] the slot key. ARGV: owner. Returns 1 when released.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Script:
    """A Lua script run by EVALSHA, loaded into the server's script cache when it is missing."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, client: Redis, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        """Run the script once."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL caches the script as well, so the next call's EVALSHA finds it.
            return await client.eval(self.source, len(keys), *keys, *args)
