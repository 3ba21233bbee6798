//! 10 million random inputs through the header parser: no panic, and every verdict is
//! consistent (a header is never "done" past its input, and growing an errored input never
//! un-errors it).

use endpoints_proxy::{DEFAULT_V2_MAX, Progress, V2_SIGNATURE, parse};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&[u8]] = &[
    b"PROXY ",
    b"TCP4 ",
    b"TCP6 ",
    b"UNKNOWN",
    b"1.2.3.4 ",
    b"::1 ",
    b"65535 ",
    b"70000 ",
    b"0 ",
    b"\r\n",
    b"\r",
    b"\n",
    b" ",
    b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ",
];

fn input(rng: &mut XorShift, buf: &mut Vec<u8>) {
    buf.clear();
    match rng.below(4) {
        0 => buf.extend_from_slice(&V2_SIGNATURE),
        1 => buf.extend_from_slice(b"PROXY "),
        _ => {}
    }
    let target = rng.below(300);
    while buf.len() < target {
        match rng.below(3) {
            0 => buf.extend_from_slice(FRAGMENTS[rng.below(FRAGMENTS.len())]),
            _ => buf.push(rng.next() as u8),
        }
    }
    // Often a plausible v2 length, so the body is parsed too.
    if buf.len() >= 16 && buf.starts_with(&V2_SIGNATURE) && rng.below(2) == 0 {
        buf[12] = 0x20 | (rng.below(2) as u8);
        buf[13] = [0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32][rng.below(7)];
        let len = (buf.len() - 16) as u16;
        buf[14..16].copy_from_slice(&len.to_be_bytes());
    }
}

#[test]
fn ten_million_random_inputs() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut buf = Vec::with_capacity(512);
    let (mut done, mut errors) = (0u64, 0u64);
    for _ in 0..10_000_000u32 {
        input(&mut rng, &mut buf);
        match parse(&buf, DEFAULT_V2_MAX) {
            Ok(Progress::Done(h, n)) => {
                assert!(n <= buf.len() && h.raw.len() == n);
                done += 1;
            }
            Ok(Progress::NeedMore) => {}
            Err(_) => {
                errors += 1;
                // Monotonic: more bytes cannot repair a refused prefix.
                let mut longer = buf.clone();
                longer.push(rng.next() as u8);
                assert!(
                    !matches!(parse(&longer, DEFAULT_V2_MAX), Ok(Progress::NeedMore)),
                    "{buf:?}"
                );
            }
        }
    }
    assert!(
        done > 1000 && errors > 1000,
        "the generator exercised too little: {done} headers, {errors} errors"
    );
}
