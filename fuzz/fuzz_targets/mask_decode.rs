//! Arbitrary bytes as the masks a worker sends: protobuf decoding of a `LayerMask` and a
//! `NetworkMask`, then the mask decoder, must return a value or an error, never panic; what
//! decodes is sorted, distinct and inside its matrix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::v1::{LayerMask, NetworkMask};

/// Masks larger than this are skipped: decoding allocates up to the matrix size, which the
/// coordinator bounds by checking the shape against the task first.
const MAX_WEIGHTS: u64 = 1 << 22;

fn check(mask: &LayerMask) {
    let size = u64::from(mask.fan_in) * u64::from(mask.fan_out);
    if size > MAX_WEIGHTS {
        return;
    }
    if let Ok(kept) = proto::decode_layer(mask) {
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "unsorted or repeated");
        assert!(kept.last().is_none_or(|&k| u64::from(k) < size), "out of range");
        // What decodes re-encodes to the same indices.
        let again = proto::encode_layer(mask.fan_in, mask.fan_out, &kept);
        assert_eq!(proto::decode_layer(&again).as_deref(), Ok(kept.as_slice()));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mask) = LayerMask::decode(data) {
        check(&mask);
    }
    if let Ok(network) = NetworkMask::decode(data) {
        for layer in network.layers.iter().take(64) {
            check(layer);
        }
    }
});
