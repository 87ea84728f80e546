//! The engine as the DPoP replay memory (`ProofReplay`), on every store backend: one proof
//! presented by 50 concurrent requests is accepted once, also when they reach two instances
//! sharing the store; it is forgotten only after its time to live.

#[macro_use]
mod support;

use std::time::Duration;

use stepup_core::policy::ProofReplay;
use support::*;

on_every_store!(
    fifty_presentations_of_one_proof_across_two_instances_are_accepted_once,
    a_proof_is_remembered_for_its_time_to_live_per_key,
);
on_every_store!(redis: fifty_presentations_of_one_proof_across_two_instances_are_accepted_once);

/// The key the resource server records: the proof key's thumbprint and the digest of its `jti`.
const KEY: &str =
    "dpop:0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I:n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";
const TTL: Duration = Duration::from_secs(66);

async fn fifty_presentations_of_one_proof_across_two_instances_are_accepted_once(h: Harness) {
    let other_instance = h.engine_on(&h.stores, keyring());
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let mfa = if n % 2 == 0 {
                h.mfa.clone()
            } else {
                other_instance.clone()
            };
            tokio::spawn(async move { mfa.first_use(KEY, TTL).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap().expect("the store answers") {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "one proof, accepted once");
}

async fn a_proof_is_remembered_for_its_time_to_live_per_key(h: Harness) {
    assert_eq!(h.mfa.first_use(KEY, TTL).await, Ok(true));
    // Another key (the same `jti` under another client's key) is another proof.
    assert_eq!(h.mfa.first_use(&format!("{KEY}x"), TTL).await, Ok(true));
    h.clock.advance(TTL - Duration::from_secs(1));
    assert_eq!(h.mfa.first_use(KEY, TTL).await, Ok(false));
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.mfa.first_use(KEY, TTL).await, Ok(true));
}
