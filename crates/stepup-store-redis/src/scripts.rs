//! The Lua scripts of the store: each reads, judges and writes one entry atomically (Redis runs
//! a script to its end before any other command).
//!
//! Every script is passed the injected clock's current second as `ARGV[1]` and treats an entry
//! whose expiry (the digits before the first `:`) is at or before it as absent. A malformed entry
//! is answered with a `STEPUP_CORRUPT` error, and left as it is.

use std::sync::LazyLock;

use redis::Script;
use redis::aio::ConnectionManager;
use stepup_store::StoreResult;

use crate::redis_error;

/// Prepends the helper every script shares to a script's body.
macro_rules! lua {
    ($body:literal) => {
        concat!(
            "local function corrupt()\n",
            "  return redis.error_reply('STEPUP_CORRUPT a stored entry is malformed')\n",
            "end\n",
            $body
        )
    };
}

/// The live value: `KEYS[1]` the value key, `ARGV[1]` now. Answers the value's bytes (without
/// the expiry), or nil when absent or expired.
pub(crate) static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r"
local stored = redis.call('GET', KEYS[1])
if not stored then return false end
local head = string.match(stored, '^(%d+):')
if not head then return corrupt() end
if tonumber(head) <= tonumber(ARGV[1]) then return false end
return string.sub(stored, #head + 2)
"
    ))
});

/// Insert-if-absent (and compare-and-swap from no value): `KEYS[1]` the value key, `ARGV[1]` now,
/// `ARGV[2]` the entry to store, `ARGV[3]` its Redis TTL in milliseconds. Stores the entry unless
/// a live one is there; answers 1 if stored, 0 if not.
pub(crate) static INSERT_IF_ABSENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r"
local stored = redis.call('GET', KEYS[1])
if stored then
  local head = string.match(stored, '^(%d+):')
  if not head then return corrupt() end
  if tonumber(head) > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"
    ))
});

/// Compare-and-swap from a value: `KEYS[1]` the value key, `ARGV[1]` now, `ARGV[2]` the expected
/// value's bytes, `ARGV[3]` the entry to store, `ARGV[4]` its Redis TTL in milliseconds. Stores
/// the entry if the live value is exactly the expected one; answers 1 if stored, 0 if not.
pub(crate) static COMPARE_AND_SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r"
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local head = string.match(stored, '^(%d+):')
if not head then return corrupt() end
if tonumber(head) <= tonumber(ARGV[1]) then return 0 end
if string.sub(stored, #head + 2) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"
    ))
});

/// A fixed-window count: `KEYS[1]` the counter key, `ARGV[1]` now, `ARGV[2]` the expiry of a new
/// window, `ARGV[3]` its Redis TTL in milliseconds. A live counter counts on, keeping its expiry
/// and its Redis TTL (`KEEPTTL`); an absent or expired one restarts at 1 in a new window. Answers
/// the new count.
pub(crate) static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r"
local stored = redis.call('GET', KEYS[1])
if stored then
  local head, count = string.match(stored, '^(%d+):(%d+)$')
  if not head then return corrupt() end
  if tonumber(head) > tonumber(ARGV[1]) then
    count = tonumber(count) + 1
    redis.call('SET', KEYS[1], head .. ':' .. string.format('%d', count), 'KEEPTTL')
    return count
  end
end
redis.call('SET', KEYS[1], ARGV[2] .. ':1', 'PX', ARGV[3])
return 1
"
    ))
});

/// Gives back one count: `KEYS[1]` the counter key, `ARGV[1]` now. A live counter above zero
/// loses one, keeping its expiry and Redis TTL; zero stays zero; an absent or expired counter is
/// left alone and reads 0. Answers the new count.
pub(crate) static DECREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r"
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local head, count = string.match(stored, '^(%d+):(%d+)$')
if not head then return corrupt() end
if tonumber(head) <= tonumber(ARGV[1]) then return 0 end
count = tonumber(count)
if count > 0 then
  count = count - 1
  redis.call('SET', KEYS[1], head .. ':' .. string.format('%d', count), 'KEEPTTL')
end
return count
"
    ))
});

/// Loads every script into the server's script cache, so that each call is one `EVALSHA`.
pub(crate) async fn load(connection: &mut ConnectionManager) -> StoreResult<()> {
    for script in [
        &*GET,
        &*INSERT_IF_ABSENT,
        &*COMPARE_AND_SWAP,
        &*INCREMENT,
        &*DECREMENT,
    ] {
        script.load_async(connection).await.map_err(redis_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::CORRUPT_CODE;

    #[test]
    fn the_scripts_report_corruption_with_the_code_the_store_expects() {
        assert!(lua!("").contains(&format!("'{CORRUPT_CODE} ")));
    }
}
