//! A bounded cache of verified tokens, one per nginx worker.
//!
//! Verifying a repeated token again proves nothing new: the bytes, the keys and the policy are
//! the same. Only the clock moves, so a hit re-checks `exp` and `nbf` and nothing else.
//!
//! Entries are keyed by the *scope* that verified them (an id for one key set and policy: the
//! glue gives the same id to identical settings) and the exact token bytes: a token verified
//! under other keys — another location, or the configuration before a reload — is a miss, and
//! the same token used under two scopes has two entries that do not displace each other.
//!
//! A token is stored from its second verification on: the first only leaves a 4-byte mark in
//! a small index of tokens seen. A token used once (a client minting one per request, a flood
//! of them) would be stored for nothing and push out the tokens in use; storing one, and
//! evicting another for it, is also most of what the cache adds to a full verification,
//! since both touch memory long out of the CPU's caches. The price is one more full
//! verification per token that does return.
//!
//! Memory is bounded by `limit` bytes of estimated cost, plus the index of tokens seen: 4
//! bytes per 256 of `limit`. Eviction is FIFO with a second chance for entries hit since
//! their last pass. An entry
//! removed early (expired on a hit) keeps its cost counted until the queue reaches it, so the
//! bound holds whatever the traffic.

use std::collections::VecDeque;
use std::rc::Rc;

use hashbrown::HashTable;

use crate::error::{Error, Reason};
use crate::verify::{Jwt, Policy};

/// Fixed overhead per entry on top of what scales with the token: table and queue slots, the
/// `Rc` header, the `Jwt` itself. An estimate; the point is a firm bound.
const ENTRY_OVERHEAD: usize = 256;

/// Bytes an entry is counted for: the key, and the parsed token (its decoded JSON text, smaller
/// than the token's base64 form; the maps variables read are built per request, not kept).
pub fn entry_cost(token_len: usize) -> usize {
    token_len.saturating_mul(3).saturating_add(ENTRY_OVERHEAD)
}

/// Hashes a token by its scope, its length and its last 16 bytes: the end of its signature.
///
/// Every lookup hashes a whole token otherwise (SipHash over ~200–800 bytes, most of the cost
/// of a hit). Only tokens that passed verification are inserted, and their signatures are
/// unpredictable without the key, so the stored keys are spread evenly; a client can make its
/// own lookups collide with a stored token, but that costs it one bucket probe and one
/// comparison, not more.
fn tail_hash(scope: u64, token: &[u8]) -> u64 {
    let tail = token.get(token.len().saturating_sub(16)..).unwrap_or(token);
    tail.chunks(8)
        .fold(mix(scope, token.len() as u64), |h, chunk| {
            // Whole words are read as such; copying into a zeroed one cost two memcpy calls a hit.
            let word = match <[u8; 8]>::try_from(chunk) {
                Ok(word) => u64::from_le_bytes(word),
                Err(_) => chunk.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b)),
            };
            mix(h, word)
        })
}

fn mix(hash: u64, word: u64) -> u64 {
    // FxHash's step: rotate, xor, multiply by an odd constant with good bit dispersion.
    (hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

struct Entry {
    token: Box<[u8]>,
    scope: u64,
    jwt: Rc<Jwt>,
    /// Which insertion this is: the queue finds its own entry by it, never by the token, so
    /// an eviction compares no bytes and a token inserted again is not taken for its old self.
    serial: u64,
    /// Hit since the eviction pass last saw it.
    referenced: bool,
}

/// An insertion, in order, with the hash to find its entry again.
struct Queued {
    hash: u64,
    serial: u64,
    cost: usize,
}

pub struct TokenCache {
    table: HashTable<Entry>,
    queue: VecDeque<Queued>,
    serial: u64,
    used: usize,
    limit: usize,
    /// Tokens verified once, each as a tag in a slot chosen by its hash and scope (0: empty);
    /// allocated on the first insert, for the limit then in force.
    seen: Vec<u32>,
}

/// Slots in the index of tokens seen once for `limit`: a power of two, some six per entry
/// the limit holds at a typical token's cost.
fn seen_slots(limit: usize) -> usize {
    (limit / 256).clamp(64, 1 << 20).next_power_of_two()
}

impl TokenCache {
    pub fn new(limit: usize) -> TokenCache {
        TokenCache {
            table: HashTable::new(),
            queue: VecDeque::new(),
            serial: 0,
            used: 0,
            limit,
            seen: Vec::new(),
        }
    }

    /// Changes the bound; the next insert evicts down to it.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes counted against the limit.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The verdict for a token verified under `scope` before: `None` on a miss, the token
    /// again if it is still within its time window, `expired`/`not_yet_valid` otherwise (an
    /// expired entry is dropped). No allocation.
    pub fn get(
        &mut self,
        scope: u64,
        token: &[u8],
        policy: &Policy,
        now: i64,
    ) -> Option<Result<Rc<Jwt>, Error>> {
        let Ok(mut found) = self.table.find_entry(tail_hash(scope, token), |e| {
            e.scope == scope && *e.token == *token
        }) else {
            return None;
        };
        let entry = found.get_mut();
        match entry.jwt.check_time(policy, now) {
            Ok(()) => {
                entry.referenced = true;
                Some(Ok(Rc::clone(&entry.jwt)))
            }
            Err(e) => {
                if e.reason == Reason::Expired {
                    found.remove();
                }
                Some(Err(e))
            }
        }
    }

    /// Remembers a token that passed every check under `scope`, if it did so before.
    pub fn insert(&mut self, scope: u64, token: &[u8], jwt: Rc<Jwt>) {
        let cost = entry_cost(token.len());
        if cost > self.limit {
            return;
        }
        let hash = tail_hash(scope, token);
        if !self.seen_before(scope, hash) {
            return;
        }
        if let Ok(old) = self
            .table
            .find_entry(hash, |e| e.scope == scope && *e.token == *token)
        {
            old.remove();
        }
        self.evict(cost);
        self.serial = self.serial.wrapping_add(1);
        self.queue.push_back(Queued {
            hash,
            serial: self.serial,
            cost,
        });
        self.used = self.used.saturating_add(cost);
        let entry = Entry {
            token: token.into(),
            scope,
            jwt,
            serial: self.serial,
            referenced: false,
        };
        self.table
            .insert_unique(hash, entry, |e| tail_hash(e.scope, &e.token));
    }

    /// Whether the token of `hash` was offered under `scope` before; marks it seen if not.
    ///
    /// Two tokens sharing a slot and a tag pass for one: the later is then stored at its first
    /// sighting, which costs memory, never correctness. A token whose mark was overwritten
    /// waits one more sighting.
    fn seen_before(&mut self, scope: u64, hash: u64) -> bool {
        let slots = seen_slots(self.limit);
        if self.seen.len() != slots {
            self.seen = vec![0; slots];
        }
        let mixed = mix(hash, scope);
        // The slot from the high half, which every bit of the token's hash reaches.
        let slot = (mixed >> 32) as usize & (slots - 1);
        let tag = mixed as u32 | 1;
        let Some(mark) = self.seen.get_mut(slot) else {
            return true;
        };
        if *mark == tag {
            return true;
        }
        *mark = tag;
        false
    }

    /// Frees room for `cost` more bytes.
    fn evict(&mut self, cost: usize) {
        // Each entry gets at most one second chance, so two passes over the queue suffice.
        let mut budget = self.queue.len().saturating_mul(2);
        while self.used.saturating_add(cost) > self.limit && budget > 0 {
            budget -= 1;
            let Some(item) = self.queue.pop_front() else {
                break;
            };
            // Not found: removed early (expired, replaced); only its cost was still counted.
            if let Ok(mut live) = self
                .table
                .find_entry(item.hash, |e| e.serial == item.serial)
            {
                if std::mem::take(&mut live.get_mut().referenced) {
                    self.queue.push_back(item);
                    continue;
                }
                live.remove();
            }
            self.used = self.used.saturating_sub(item.cost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{verify, Algorithm, Claims, KeySet};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn keys() -> KeySet {
        KeySet::from_secret(b"cache-test-secret", Algorithm::HS256)
            .unwrap()
            .0
    }

    fn token(sub: &str, exp: i64) -> String {
        let claims = json!({"sub": sub, "exp": exp});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"cache-test-secret"),
        )
        .unwrap()
    }

    fn verified(t: &str) -> Rc<Jwt> {
        Rc::new(verify(t.as_bytes(), &keys(), &Policy::default(), NOW).unwrap())
    }

    /// Inserts a token verified a second time: the first only marks it seen.
    fn put(c: &mut TokenCache, scope: u64, t: &str, jwt: Rc<Jwt>) {
        c.insert(scope, t.as_bytes(), Rc::clone(&jwt));
        c.insert(scope, t.as_bytes(), jwt);
    }

    #[test]
    fn a_token_is_stored_from_its_second_verification_on() {
        let p = Policy::default();
        let mut c = TokenCache::new(1 << 20);
        let t = token("alice", NOW + 60);
        c.insert(1, t.as_bytes(), verified(&t));
        assert!(c.is_empty() && c.used() == 0, "stored at first sight");
        // Under other keys or policy, it is seen for the first time.
        c.insert(2, t.as_bytes(), verified(&t));
        assert!(c.is_empty());
        c.insert(1, t.as_bytes(), verified(&t));
        assert!(c.get(1, t.as_bytes(), &p, NOW).is_some());
        assert!(c.get(2, t.as_bytes(), &p, NOW).is_none());
    }

    #[test]
    fn tokens_seen_once_do_not_push_out_those_in_use() {
        let p = Policy::default();
        let hot = token("hot", NOW + 60);
        let mut c = TokenCache::new(entry_cost(hot.len()) * 3);
        put(&mut c, 1, &hot, verified(&hot));
        for i in 0..200 {
            let t = token(&format!("once{i:03}"), NOW + 60);
            c.insert(1, t.as_bytes(), verified(&t));
        }
        assert_eq!(c.len(), 1);
        assert!(c.get(1, hot.as_bytes(), &p, NOW).is_some());
    }

    #[test]
    fn hit_after_insert_in_the_same_scope_only() {
        let p = Policy::default();
        let mut c = TokenCache::new(1 << 20);
        let t = token("alice", NOW + 60);
        assert!(c.get(1, t.as_bytes(), &p, NOW).is_none());
        put(&mut c, 1, &t, verified(&t));
        let hit = c.get(1, t.as_bytes(), &p, NOW).unwrap().unwrap();
        assert_eq!(Claims::new(hit).sub(), Some("alice"));
        // Another key set or policy (another location, a reloaded configuration): a miss.
        assert!(c.get(2, t.as_bytes(), &p, NOW).is_none());
        // One byte more or less is another token.
        assert!(c.get(1, &t.as_bytes()[..t.len() - 1], &p, NOW).is_none());
    }

    #[test]
    fn a_hit_rechecks_the_clock_and_drops_expired_entries() {
        let mut c = TokenCache::new(1 << 20);
        let t = token("bob", NOW + 10);
        put(&mut c, 1, &t, verified(&t));
        let p = Policy::default();
        assert!(c.get(1, t.as_bytes(), &p, NOW + 9).unwrap().is_ok());
        let leeway = Policy {
            leeway: 5,
            ..Policy::default()
        };
        assert!(c.get(1, t.as_bytes(), &leeway, NOW + 12).unwrap().is_ok());
        let e = c.get(1, t.as_bytes(), &p, NOW + 10).unwrap().unwrap_err();
        assert_eq!(e.reason, Reason::Expired);
        assert!(c.is_empty(), "an expired entry dies at exp");
        assert!(c.get(1, t.as_bytes(), &p, NOW + 10).is_none());
    }

    #[test]
    fn nbf_is_rechecked_on_a_hit() {
        let claims = json!({"sub": "c", "exp": NOW + 100, "nbf": NOW + 20});
        let t = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"cache-test-secret"),
        )
        .unwrap();
        let leeway = Policy {
            leeway: 30,
            ..Policy::default()
        };
        let jwt = Rc::new(verify(t.as_bytes(), &keys(), &leeway, NOW).unwrap());
        let mut c = TokenCache::new(1 << 20);
        put(&mut c, 1, &t, jwt);
        let strict = Policy::default();
        let e = c.get(1, t.as_bytes(), &strict, NOW).unwrap().unwrap_err();
        assert_eq!(e.reason, Reason::NotYetValid);
        assert_eq!(c.len(), 1, "not yet valid is not dead");
    }

    #[test]
    fn memory_stays_within_the_limit() {
        let p = Policy::default();
        let t0 = token("user-0", NOW + 60);
        let limit = entry_cost(t0.len()) * 10;
        let mut c = TokenCache::new(limit);
        for i in 0..1000 {
            let t = token(&format!("user-{i}"), NOW + 60);
            put(&mut c, 1, &t, verified(&t));
            assert!(c.used() <= limit, "used {} > limit {limit}", c.used());
        }
        assert!(c.len() <= 10);
        assert!(
            c.get(1, t0.as_bytes(), &p, NOW).is_none(),
            "the oldest went first"
        );
    }

    #[test]
    fn entries_removed_early_still_count_until_evicted() {
        // Tokens that expire at once must not grow the queue beyond the bound.
        let p = Policy::default();
        let t0 = token("u", NOW + 1);
        let limit = entry_cost(t0.len()) * 4;
        let mut c = TokenCache::new(limit);
        for i in 0..500 {
            let t = token(&format!("u{i}"), NOW + 1);
            put(&mut c, 1, &t, verified(&t));
            let _ = c.get(1, t.as_bytes(), &p, NOW + 5);
            assert!(c.used() <= limit);
            assert!(c.queue.len() <= 4);
        }
    }

    #[test]
    fn hit_entries_get_a_second_chance() {
        let p = Policy::default();
        let hot = token("hot", NOW + 60);
        let limit = entry_cost(hot.len()) * 3;
        let mut c = TokenCache::new(limit);
        put(&mut c, 1, &hot, verified(&hot));
        for i in 0..20 {
            assert!(
                c.get(1, hot.as_bytes(), &p, NOW).is_some(),
                "hot evicted at {i}"
            );
            let t = token(&format!("cold{i:02}x"), NOW + 60);
            put(&mut c, 1, &t, verified(&t));
        }
    }

    #[test]
    fn a_token_larger_than_the_cache_is_not_kept() {
        let t = token("big", NOW + 60);
        let mut c = TokenCache::new(entry_cost(t.len()) - 1);
        put(&mut c, 1, &t, verified(&t));
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn tokens_differing_before_their_tail_are_distinct_entries() {
        // Same last 16 bytes, same length: one bucket, still two keys.
        let p = Policy::default();
        let a = token("same-tail-a", NOW + 60);
        let b = token("same-tail-b", NOW + 60);
        let mut c = TokenCache::new(1 << 20);
        put(&mut c, 1, &a, verified(&a));
        let mut forged = b.clone().into_bytes();
        let n = forged.len();
        forged[n - 16..].copy_from_slice(&a.as_bytes()[a.len() - 16..]);
        assert!(c.get(1, &forged, &p, NOW).is_none());
        put(&mut c, 1, &b, verified(&b));
        assert_eq!(
            Claims::new(c.get(1, a.as_bytes(), &p, NOW).unwrap().unwrap()).sub(),
            Some("same-tail-a")
        );
        assert_eq!(
            Claims::new(c.get(1, b.as_bytes(), &p, NOW).unwrap().unwrap()).sub(),
            Some("same-tail-b")
        );
    }

    #[test]
    fn a_token_under_two_scopes_has_an_entry_in_each() {
        let p = Policy::default();
        let t = token("x", NOW + 60);
        let mut c = TokenCache::new(1 << 20);
        put(&mut c, 1, &t, verified(&t));
        put(&mut c, 2, &t, verified(&t));
        assert!(c.get(1, t.as_bytes(), &p, NOW).is_some());
        assert!(c.get(2, t.as_bytes(), &p, NOW).is_some());
        assert!(c.get(3, t.as_bytes(), &p, NOW).is_none());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_token_alternating_between_scopes_displaces_nobody() {
        let p = Policy::default();
        let others: Vec<String> = (0..3).map(|i| token(&format!("u{i}"), NOW + 60)).collect();
        let t = token("t", NOW + 60);
        // Room for exactly the three others and the token's two entries.
        let room =
            others.iter().map(|u| entry_cost(u.len())).sum::<usize>() + 2 * entry_cost(t.len());
        let mut c = TokenCache::new(room);
        for u in &others {
            put(&mut c, 1, u, verified(u));
        }
        // What the glue does per request: look up, and verify and insert on a miss.
        for round in 0..1000 {
            let scope = 2 + round % 2;
            if c.get(scope, t.as_bytes(), &p, NOW).is_none() {
                c.insert(scope, t.as_bytes(), verified(&t));
            }
        }
        for u in &others {
            assert!(
                c.get(1, u.as_bytes(), &p, NOW).is_some(),
                "{u} was pushed out"
            );
        }
        assert_eq!(c.len(), 5);
    }
}
