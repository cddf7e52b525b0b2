"""The Lua of every task-record transition, each run atomically by Redis (`store` registers
them). KEYS and ARGV are documented by the `TaskStore` method that calls each one.

Every transition into or out of a terminal state also keeps the tenant's set of unfinished
tasks (`keys.open_tasks`, the per-tenant queued-task cap) in step: `OPEN_TASKS` below is that
key's prefix, built from the record's `tenant` field inside the script.

Every status change also appends its event to the task's stream (`keys.events`) in the same
script, so the stream never disagrees with the record: `emit(stream, ttl, at, fields...)`.
"""

OPEN_TASKS = "agentprod:open:"  # == keys.OPEN_TASKS_PREFIX (a unit test holds them equal)
#: Entries a task's event stream keeps (approximately: XADD MAXLEN ~).
EVENTS_MAXLEN = 1000

_EMIT = (
    """
local function emit(stream, ttl, at, ...)
  redis.call('XADD', stream, 'MAXLEN', '~', '"""
    + str(EVENTS_MAXLEN)
    + """', '*', 'at', at, ...)
  redis.call('EXPIRE', stream, ttl)
end
"""
)

_OPEN = f"""
local function open_key(task_key)
  return '{OPEN_TASKS}' .. (redis.call('HGET', task_key, 'tenant') or 'public')
end
"""

CREATE = (
    _EMIT
    + """
if KEYS[2] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {'existing', existing} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate', ''} end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return {'full', ''} end
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2]) end
local task_id = redis.call('HGET', KEYS[1], 'task_id')
redis.call('ZADD', KEYS[3], ARGV[6], task_id)
-- the tenant's index of GET /tasks: trimmed past the longest record TTL, expiring with it
redis.call('ZADD', KEYS[4], ARGV[6], task_id)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[8])
redis.call('EXPIRE', KEYS[4], ARGV[7])
emit(KEYS[5], ARGV[7], ARGV[6], 'type', 'status', 'status', 'queued', 'attempt', '0')
return {'created', ''}
"""
)

DISCARD_UNSENT = (
    _OPEN
    + """
if redis.call('HGET', KEYS[1], 'sent') == '0' then
  redis.call('ZREM', open_key(KEYS[1]), redis.call('HGET', KEYS[1], 'task_id'))
  redis.call('DEL', KEYS[1])
  redis.call('DEL', KEYS[4])
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
  if KEYS[2] ~= '' then
    local seen = redis.call('GET', KEYS[2])
    if seen and string.sub(seen, 1, #ARGV[1]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
  end
  return 1
end
return 0
"""
)

CLAIM = (
    _OPEN
    + _EMIT
    + """
local f = redis.call('HMGET', KEYS[1], 'status', 'lease_until', 'attempts', 'published', 'lost',
  'cancel_requested')
local status = f[1]
if not status then
  if redis.call('EXISTS', KEYS[3]) == 1 then return {'missing', 0, 0, 0} end
  return {'lost', 0, 0, 0}
end
if status == 'done' or status == 'failed' or status == 'cancelled' then
  return {'finished', tonumber(f[3]) or 0, tonumber(f[4]) or 0, 0}
end
local now = tonumber(ARGV[2])
if status == 'running' and tonumber(f[2] or 0) > now then
  return {'busy', tonumber(f[3]) or 0, 0, tonumber(f[2])}
end
local attempts = (tonumber(f[3]) or 0) + 1
local lost = tonumber(f[5]) or 0
if f[6] == '1' then
  -- cancelled while running, and that worker died before it could settle: settle it now
  redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'result', 'null',
    'error', 'cancelled by request', 'finished_at', now / 1000, 'published', '0')
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('ZREM', open_key(KEYS[1]), ARGV[4])
  emit(KEYS[4], ARGV[6], now / 1000, 'type', 'status', 'status', 'cancelled',
    'attempt', tonumber(f[3]) or 0, 'error', 'cancelled by request', 'result', 'null')
  return {'finished', tonumber(f[3]) or 0, 0, 0}
end
if status == 'running' then
  -- the lease ran out: the worker running it died (or hung) mid-task
  lost = lost + 1
  if lost >= tonumber(ARGV[5]) then
    local reason = 'worker lost ' .. lost .. ' times running this task'
    redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
    redis.call('HSET', KEYS[1], 'status', 'failed', 'lost', lost, 'result', 'null',
      'error', reason, 'finished_at', now / 1000)
    redis.call('EXPIRE', KEYS[1], ARGV[6])
    redis.call('ZREM', KEYS[2], ARGV[4])
    redis.call('ZREM', open_key(KEYS[1]), ARGV[4])
    emit(KEYS[4], ARGV[6], now / 1000, 'type', 'status', 'status', 'failed',
      'attempt', tonumber(f[3]) or 0, 'error', reason, 'result', 'null')
    return {'abandoned', tonumber(f[3]) or 0, 0, 0}
  end
end
local lease = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[1], 'lease_until', lease,
  'attempts', attempts, 'started_at', now / 1000, 'sent', '1', 'lost', lost)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], lease, ARGV[4])
emit(KEYS[4], ARGV[6], now / 1000, 'type', 'status', 'status', 'running', 'attempt', attempts)
return {'claimed', attempts, 0, lease}
"""
)

RENEW = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return 2 end
return 1
"""

FINISH = (
    _OPEN
    + _EMIT
    + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'result', ARGV[3], 'error', ARGV[4],
  'finished_at', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('ZREM', open_key(KEYS[1]), ARGV[7])
emit(KEYS[3], ARGV[6], ARGV[5], 'type', 'status', 'status', ARGV[2],
  'attempt', redis.call('HGET', KEYS[1], 'attempts') or '0', 'error', ARGV[4], 'result', ARGV[3])
return 1
"""
)

RELEASE = (
    _OPEN
    + _EMIT
    + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
redis.call('ZREM', KEYS[2], ARGV[3])
local attempt = redis.call('HGET', KEYS[1], 'attempts') or '0'
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  -- a cancel came while this attempt ran: no retry, the task ends here
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'result', 'null',
    'error', 'cancelled by request', 'finished_at', ARGV[4], 'published', '0')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('ZREM', open_key(KEYS[1]), ARGV[3])
  emit(KEYS[3], ARGV[5], ARGV[4], 'type', 'status', 'status', 'cancelled', 'attempt', attempt,
    'error', 'cancelled by request', 'result', 'null')
  return 2
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'error', ARGV[2])
emit(KEYS[3], ARGV[5], ARGV[4], 'type', 'status', 'status', 'queued', 'attempt', attempt,
  'error', ARGV[2])
return 1
"""
)

CANCEL = (
    _OPEN
    + _EMIT
    + """
local f = redis.call('HMGET', KEYS[1], 'status', 'cancel_requested', 'attempts')
local status = f[1]
if not status then return {'missing', ''} end
if status == 'done' or status == 'failed' then return {'finished', status} end
if status == 'cancelled' then return {'cancelled', 'cancelled'} end
if status == 'running' then
  if f[2] ~= '1' then
    redis.call('HSET', KEYS[1], 'cancel_requested', '1')
    emit(KEYS[3], ARGV[2], ARGV[1], 'type', 'cancel_requested', 'attempt', f[3] or '0')
  end
  redis.call('PUBLISH', ARGV[4], ARGV[3])
  return {'cancelling', 'running'}
end
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancel_requested', '1', 'result', 'null',
  'error', ARGV[5], 'finished_at', ARGV[1], 'published', '0')
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREM', open_key(KEYS[1]), ARGV[3])
emit(KEYS[3], ARGV[2], ARGV[1], 'type', 'status', 'status', 'cancelled', 'attempt', f[3] or '0',
  'error', ARGV[5], 'result', 'null')
return {'cancelled', status}
"""
)

SETTLE_DEAD = (
    _OPEN
    + _EMIT
    + """
local f = redis.call('HMGET', KEYS[1], 'status', 'lease_until')
local status = f[1]
if not status then return 'missing' end
if status == 'done' or status == 'failed' or status == 'cancelled' then return 'finished' end
if status == 'running' and tonumber(f[2] or 0) > tonumber(ARGV[1]) * 1000 then
  return 'busy'
end
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[2], 'result', 'null',
  'finished_at', ARGV[1], 'sent', '1', 'published', '0')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', open_key(KEYS[1]), ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[4])
emit(KEYS[4], ARGV[3], ARGV[1], 'type', 'status', 'status', 'failed',
  'attempt', redis.call('HGET', KEYS[1], 'attempts') or '0', 'error', ARGV[2], 'result', 'null')
return 'failed'
"""
)

REDRIVE = (
    _OPEN
    + _EMIT
    + """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) == false then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'failed' then return 0 end
redis.call('HDEL', KEYS[1], 'finished_at', 'result', 'owner', 'lease_until')
redis.call('HSET', KEYS[1], 'status', 'queued', 'error', '', 'lost', 0, 'published', '0')
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', open_key(KEYS[1]), redis.call('HGET', KEYS[1], 'created_at'), ARGV[1])
emit(KEYS[3], ARGV[2], ARGV[3], 'type', 'status', 'status', 'queued',
  'attempt', redis.call('HGET', KEYS[1], 'attempts') or '0')
return 1
"""
)

RECREATE = (
    _OPEN
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', open_key(KEYS[1]), redis.call('HGET', KEYS[1], 'created_at'),
  redis.call('HGET', KEYS[1], 'task_id'))
return 1
"""
)

MARK_PUBLISHED = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'published', '1') end
return 1
"""
