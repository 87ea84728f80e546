//! The conformance suite of [`DeviceStore`]: storage as given, refused collisions, touches,
//! listing order, revocation and expiry by the store's clock.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::{Clock, ManualClock};

use super::{Ids, check, expect};
use crate::{DeviceRecord, DeviceStore};

/// Runs every check of [`DeviceStore`] on `store`, panicking with a description of the first
/// failure.
///
/// `store` must judge expiry by `clock` (the suite moves it forward). The store may hold other
/// data, and the suite may run more than once on it.
pub async fn run<S: DeviceStore>(store: Arc<S>, clock: ManualClock) {
    let ids = Ids::new();
    device_lifecycle(&store, &ids, &clock).await;
    device_generation(&store, &ids, &clock).await;
    device_listing(&store, &ids, &clock).await;
    device_revocation(&store, &ids, &clock).await;
    device_expiry(&store, &ids, &clock).await;
}

/// A device of `user` remembered at `now` for a day.
fn device(ids: &Ids, check: &str, name: &str, user: &str, now: u64) -> DeviceRecord {
    DeviceRecord {
        id: ids.id(check, name),
        user: user.to_owned(),
        token_hash: ids.id(check, &format!("{name}-token")),
        created_at: now,
        last_used_at: now,
        expires_at: now + 86_400,
        mfa_at: now.saturating_sub(5),
        address: Some("192.0.2.1".to_owned()),
        user_agent: Some("conformance/1.0".to_owned()),
        generation: 0,
    }
}

fn device_ids(devices: &[DeviceRecord]) -> Vec<&str> {
    devices.iter().map(|device| device.id.as_str()).collect()
}

async fn device_lifecycle<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-lifecycle";
    let user = ids.user(check_name);
    let now = clock.unix_seconds();
    let phone = device(ids, check_name, "phone", &user, now);

    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        None,
        "device_by_token before the device is stored",
    );
    expect(store.insert_device(phone.clone()).await, "insert_device");
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(phone.clone()),
        "device_by_token of a stored device (as stored)",
    );
    check(
        expect(
            store
                .device_by_token(&ids.id(check_name, "unknown-token"))
                .await,
            "device_by_token",
        ),
        None,
        "device_by_token of an unknown token hash",
    );
    check(
        expect(store.device_by_token(&phone.id).await, "device_by_token"),
        None,
        "device_by_token of a device id (not a token hash)",
    );

    // A taken id or token hash is refused and leaves the stored device alone.
    check(
        store
            .insert_device(DeviceRecord {
                token_hash: ids.id(check_name, "fresh-token"),
                user: ids.user("device-lifecycle-thief"),
                ..phone.clone()
            })
            .await
            .is_err(),
        true,
        "insert_device with a taken id fails",
    );
    check(
        store
            .insert_device(DeviceRecord {
                id: ids.id(check_name, "fresh-id"),
                user: ids.user("device-lifecycle-thief"),
                ..phone.clone()
            })
            .await
            .is_err(),
        true,
        "insert_device with a taken token hash fails",
    );
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(phone.clone()),
        "the device after refused inserts",
    );
    check(
        expect(
            store
                .device_by_token(&ids.id(check_name, "fresh-token"))
                .await,
            "device_by_token",
        ),
        None,
        "a refused insert stores nothing",
    );

    check(
        expect(
            store
                .touch_device(&phone.id, now + 10, Some("198.51.100.7"), Some("agent/2"))
                .await,
            "touch_device",
        ),
        true,
        "touch_device of a live device",
    );
    let touched = DeviceRecord {
        last_used_at: now + 10,
        address: Some("198.51.100.7".to_owned()),
        user_agent: Some("agent/2".to_owned()),
        ..phone.clone()
    };
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(touched.clone()),
        "the device after touch_device (only last use, address and user agent changed)",
    );
    check(
        expect(
            store.touch_device(&phone.id, now + 20, None, None).await,
            "touch_device",
        ),
        true,
        "touch_device without address or user agent",
    );
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(DeviceRecord {
            last_used_at: now + 20,
            address: None,
            user_agent: None,
            ..phone.clone()
        }),
        "touch_device with None clears address and user agent",
    );
    check(
        expect(
            store
                .touch_device(&ids.id(check_name, "unknown"), now, None, None)
                .await,
            "touch_device",
        ),
        false,
        "touch_device of an unknown id",
    );
}

/// The generation a device was remembered in is stored as given and kept by a touch.
async fn device_generation<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-generation";
    let user = ids.user(check_name);
    let now = clock.unix_seconds();
    // Beyond 32 bits, within every backend's integers.
    let laptop = DeviceRecord {
        generation: (1 << 40) + 5,
        ..device(ids, check_name, "laptop", &user, now)
    };
    let phone = device(ids, check_name, "phone", &user, now);
    for device in [&laptop, &phone] {
        expect(store.insert_device(device.clone()).await, "insert_device");
        check(
            expect(
                store.device_by_token(&device.token_hash).await,
                "device_by_token",
            ),
            Some(device.clone()),
            "device_by_token: the generation stored as given",
        );
    }
    let mut listed = expect(store.devices(&user).await, "devices");
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    check(
        listed,
        vec![laptop.clone(), phone],
        "devices: the generations stored as given (sorted here)",
    );
    check(
        expect(
            store.touch_device(&laptop.id, now + 5, None, None).await,
            "touch_device",
        ),
        true,
        "touch_device",
    );
    check(
        expect(
            store.device_by_token(&laptop.token_hash).await,
            "device_by_token",
        )
        .map(|device| device.generation),
        Some(laptop.generation),
        "touch_device keeps the generation",
    );
}

async fn device_listing<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-listing";
    let user = ids.user(check_name);
    let other = ids.user("device-listing-other");
    let now = clock.unix_seconds();

    check(
        expect(store.devices(&user).await, "devices"),
        Vec::new(),
        "devices of a user without any",
    );
    // Inserted in an order matching neither the expected listing nor its reverse.
    for (name, last_used) in [("b", now + 30), ("a", now + 10), ("c", now + 20)] {
        expect(
            store
                .insert_device(DeviceRecord {
                    last_used_at: last_used,
                    ..device(ids, check_name, name, &user, now)
                })
                .await,
            "insert_device",
        );
    }
    expect(
        store
            .insert_device(device(ids, check_name, "elsewhere", &other, now + 40))
            .await,
        "insert_device",
    );
    let listed = expect(store.devices(&user).await, "devices");
    check(
        device_ids(&listed),
        vec![
            ids.id(check_name, "b").as_str(),
            ids.id(check_name, "c").as_str(),
            ids.id(check_name, "a").as_str(),
        ],
        "devices: only the user's, most recently used first",
    );
    check(
        listed.iter().all(|device| device.user == user),
        true,
        "devices lists only the user's devices",
    );

    expect(
        store
            .touch_device(&ids.id(check_name, "a"), now + 50, None, None)
            .await,
        "touch_device",
    );
    check(
        device_ids(&expect(store.devices(&user).await, "devices")),
        vec![
            ids.id(check_name, "a").as_str(),
            ids.id(check_name, "b").as_str(),
            ids.id(check_name, "c").as_str(),
        ],
        "devices after touching the least recently used one",
    );
    check(
        device_ids(&expect(store.devices(&other).await, "devices")),
        vec![ids.id(check_name, "elsewhere").as_str()],
        "devices of another user",
    );
}

async fn device_revocation<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-revocation";
    let user = ids.user(check_name);
    let other = ids.user("device-revocation-other");
    let now = clock.unix_seconds();
    for name in ["a", "b", "c"] {
        expect(
            store
                .insert_device(device(ids, check_name, name, &user, now))
                .await,
            "insert_device",
        );
    }
    let others = device(ids, check_name, "others", &other, now);
    expect(store.insert_device(others.clone()).await, "insert_device");

    check(
        expect(
            store.delete_device(&user, &others.id).await,
            "delete_device",
        ),
        false,
        "delete_device of another user's device",
    );
    check(
        expect(
            store.device_by_token(&others.token_hash).await,
            "device_by_token",
        ),
        Some(others.clone()),
        "another user's device after a refused delete_device",
    );
    let a = device(ids, check_name, "a", &user, now);
    check(
        expect(store.delete_device(&user, &a.id).await, "delete_device"),
        true,
        "delete_device of the user's device",
    );
    check(
        expect(store.delete_device(&user, &a.id).await, "delete_device"),
        false,
        "delete_device of a revoked device",
    );
    check(
        expect(
            store.device_by_token(&a.token_hash).await,
            "device_by_token",
        ),
        None,
        "device_by_token of a revoked device",
    );
    check(
        expect(
            store.touch_device(&a.id, now + 1, None, None).await,
            "touch_device",
        ),
        false,
        "touch_device of a revoked device",
    );
    check(
        expect(store.devices(&user).await, "devices").len(),
        2,
        "devices after one revocation",
    );

    check(
        expect(store.delete_devices(&user).await, "delete_devices"),
        2,
        "delete_devices counts the user's devices",
    );
    check(
        expect(store.devices(&user).await, "devices"),
        Vec::new(),
        "devices after delete_devices",
    );
    check(
        expect(store.delete_devices(&user).await, "delete_devices"),
        0,
        "delete_devices of a user without any",
    );
    check(
        expect(store.devices(&other).await, "devices"),
        vec![others],
        "delete_devices leaves another user's devices alone",
    );
}

async fn device_expiry<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-expiry";
    let user = ids.user(check_name);
    let now = clock.unix_seconds();
    let short = DeviceRecord {
        expires_at: now + 60,
        ..device(ids, check_name, "short", &user, now)
    };
    let long = device(ids, check_name, "long", &user, now);
    expect(store.insert_device(short.clone()).await, "insert_device");
    expect(store.insert_device(long.clone()).await, "insert_device");

    clock.advance(Duration::from_secs(59));
    check(
        expect(
            store.device_by_token(&short.token_hash).await,
            "device_by_token",
        ),
        Some(short.clone()),
        "device_by_token one second before expiry",
    );
    check(
        expect(
            store.touch_device(&short.id, now + 59, None, None).await,
            "touch_device",
        ),
        true,
        "touch_device one second before expiry",
    );
    check(
        expect(store.devices(&user).await, "devices").len(),
        2,
        "devices one second before expiry",
    );

    clock.advance(Duration::from_secs(1));
    check(
        expect(
            store.device_by_token(&short.token_hash).await,
            "device_by_token",
        ),
        None,
        "device_by_token at the expiry (by the store's clock)",
    );
    check(
        device_ids(&expect(store.devices(&user).await, "devices")),
        vec![long.id.as_str()],
        "devices at the expiry lists only the live device",
    );
    check(
        expect(
            store.touch_device(&short.id, now + 60, None, None).await,
            "touch_device",
        ),
        false,
        "touch_device of an expired device",
    );
    check(
        expect(store.delete_device(&user, &short.id).await, "delete_device"),
        false,
        "delete_device of an expired device (absent)",
    );
    check(
        expect(
            store.device_by_token(&long.token_hash).await,
            "device_by_token",
        ),
        Some(long),
        "the live device is untouched by the expiry of another",
    );
    check(
        expect(store.delete_devices(&user).await, "delete_devices"),
        1,
        "delete_devices counts only live devices",
    );
}
