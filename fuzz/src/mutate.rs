//! Turning seed requests into hostile frames.

use bytes::{BufMut, Bytes, BytesMut};

use crate::seeds::Seed;

/// xorshift64*: fast, and the same run again from the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break length and count fields: empty, negative, huge, just past a boundary.
const HOSTILE_I32: [i32; 9] = [0, -1, 1, i32::MAX, i32::MIN, 0x7fff, 0x8000, 0xffff, 0x0100_0000];

/// One frame: a size prefix that matches, then a seed as it is (a well-formed request with hostile
/// values) or, one time in 32, with its body mutated (now and then its header too), which the agent
/// usually refuses by closing the connection.
pub fn frame(seeds: &[Seed], rng: &mut Rng) -> Bytes {
    let mut seed = &seeds[rng.below(seeds.len())];
    // Requests that park hold back every answer after them: send them rarely.
    while seed.parks && rng.below(50) != 0 {
        seed = &seeds[rng.below(seeds.len())];
    }
    let mut message = BytesMut::from(&seed.message[..]);
    let body_at = if rng.below(20) == 0 { 0 } else { seed.body_at };
    let mutation = if rng.below(32) == 0 { 1 + rng.below(7) } else { 0 };
    match mutation {
        0 => {}
        1 | 2 => {
            for _ in 0..1 + rng.below(8) {
                flip(&mut message, body_at, rng);
            }
        }
        3 | 4 => {
            let at = body_at + rng.below(message.len().saturating_sub(body_at).max(1));
            let value = HOSTILE_I32[rng.below(HOSTILE_I32.len())].to_be_bytes();
            for (i, b) in value.iter().enumerate() {
                if let Some(slot) = message.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
        5 => {
            let keep = body_at + rng.below(message.len().saturating_sub(body_at).max(1));
            message.truncate(keep);
        }
        6 => {
            let other = &seeds[rng.below(seeds.len())];
            let from = other.body_at + rng.below(other.message.len().saturating_sub(other.body_at).max(1));
            let at = body_at + rng.below(message.len().saturating_sub(body_at).max(1));
            message.truncate(at);
            message.put_slice(&other.message[from..]);
        }
        _ => {
            message.truncate(body_at);
            for _ in 0..rng.below(256) {
                message.put_u8(rng.next() as u8);
            }
        }
    }
    let mut out = BytesMut::with_capacity(4 + message.len());
    out.put_i32(message.len() as i32);
    out.put_slice(&message);
    out.freeze()
}

fn flip(message: &mut BytesMut, from: usize, rng: &mut Rng) {
    if message.len() > from {
        let at = from + rng.below(message.len() - from);
        message[at] ^= 1 << rng.below(8);
    }
}
