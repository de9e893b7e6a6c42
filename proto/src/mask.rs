//! The wire encoding of one layer's mask: the kept flat indices of a `[fan_out, fan_in]`
//! weight matrix, as a Roaring bitmap or as delta-varint packed indices, whichever is smaller.
//!
//! Decoding never panics and never trusts its input: bad bytes, unsorted or duplicate indices
//! and indices outside the matrix are all errors.

use roaring::RoaringBitmap;

use crate::v1::{layer_mask::Encoding, LayerMask};

/// Why a [`LayerMask`] does not decode to a valid set of kept indices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskDecodeError {
    #[error("mask has no encoding")]
    MissingEncoding,
    #[error("a {fan_out}x{fan_in} weight matrix has more weights than 32-bit indices address")]
    TooLarge { fan_in: u32, fan_out: u32 },
    #[error("bad roaring bitmap: {0}")]
    Roaring(String),
    #[error("{0} trailing bytes after the roaring bitmap")]
    TrailingBytes(usize),
    #[error("truncated varint at byte {offset}")]
    Truncated { offset: usize },
    #[error("varint at byte {offset} does not fit 32 bits")]
    VarintOverflow { offset: usize },
    #[error("index {position} repeats the previous index {value}")]
    Duplicate { position: usize, value: u32 },
    #[error("index {position} is out of range: {value} >= {limit} weights")]
    OutOfRange {
        position: usize,
        value: u64,
        limit: u64,
    },
}

/// Encodes the kept indices of a `[fan_out, fan_in]` weight matrix.
///
/// `kept` must be sorted and distinct (as `shared::graph::LayerMask::kept` is); a `kept` that
/// is not encodes to a mask that [`decode_layer`] rejects, it never panics.
pub fn encode_layer(fan_in: u32, fan_out: u32, kept: &[u32]) -> LayerMask {
    let packed = pack_indices(kept);
    let encoding = match roaring_bytes(kept) {
        Some(roaring) if roaring.len() < packed.len() => Encoding::Roaring(roaring),
        _ => Encoding::SortedIndices(packed),
    };
    LayerMask {
        fan_in,
        fan_out,
        encoding: Some(encoding),
    }
}

/// Decodes the kept indices of a layer: sorted, distinct and below `fan_in * fan_out`.
///
/// Memory use is bounded by the matrix size, so check `fan_in` and `fan_out` against the
/// expected shape before decoding untrusted masks of untrusted size.
pub fn decode_layer(mask: &LayerMask) -> Result<Vec<u32>, MaskDecodeError> {
    let limit = u64::from(mask.fan_in) * u64::from(mask.fan_out);
    if limit > u64::from(u32::MAX) + 1 {
        return Err(MaskDecodeError::TooLarge {
            fan_in: mask.fan_in,
            fan_out: mask.fan_out,
        });
    }
    match &mask.encoding {
        None => Err(MaskDecodeError::MissingEncoding),
        Some(Encoding::Roaring(bytes)) => decode_roaring(bytes, limit),
        Some(Encoding::SortedIndices(bytes)) => unpack_indices(bytes, limit),
    }
}

/// The portable Roaring serialization (run containers where they help), or `None` when
/// `kept` is not sorted and distinct.
fn roaring_bytes(kept: &[u32]) -> Option<Vec<u8>> {
    let mut bitmap = RoaringBitmap::from_sorted_iter(kept.iter().copied()).ok()?;
    if bitmap.len() != kept.len() as u64 {
        return None;
    }
    bitmap.optimize();
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    bitmap.serialize_into(&mut bytes).ok()?;
    Some(bytes)
}

fn decode_roaring(bytes: &[u8], limit: u64) -> Result<Vec<u32>, MaskDecodeError> {
    let mut reader = bytes;
    let bitmap = RoaringBitmap::deserialize_from(&mut reader)
        .map_err(|e| MaskDecodeError::Roaring(e.to_string()))?;
    if !reader.is_empty() {
        return Err(MaskDecodeError::TrailingBytes(reader.len()));
    }
    // Checked before collecting: run containers can claim billions of indices in a few bytes.
    if let Some(max) = bitmap.max() {
        if u64::from(max) >= limit {
            return Err(MaskDecodeError::OutOfRange {
                position: bitmap.len().saturating_sub(1) as usize,
                value: u64::from(max),
                limit,
            });
        }
    }
    Ok(bitmap.iter().collect())
}

/// The first index, then the differences between consecutive indices, as LEB128 varints.
fn pack_indices(kept: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kept.len() + kept.len() / 2);
    let mut previous = 0u32;
    for (position, &index) in kept.iter().enumerate() {
        // Wrapping: an unsorted input yields a delta that overflows when decoded.
        let delta = if position == 0 {
            index
        } else {
            index.wrapping_sub(previous)
        };
        write_varint(&mut out, delta);
        previous = index;
    }
    out
}

fn write_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn unpack_indices(bytes: &[u8], limit: u64) -> Result<Vec<u32>, MaskDecodeError> {
    let mut kept = Vec::new();
    let mut offset = 0;
    let mut previous: Option<u64> = None;
    while offset < bytes.len() {
        let start = offset;
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&byte) = bytes.get(offset) else {
                return Err(MaskDecodeError::Truncated { offset: start });
            };
            offset += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if value > u64::from(u32::MAX) || (shift == 28 && byte & 0x80 != 0) {
                return Err(MaskDecodeError::VarintOverflow { offset: start });
            }
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let position = kept.len();
        let index = match previous {
            None => value,
            Some(_) if value == 0 => {
                return Err(MaskDecodeError::Duplicate {
                    position,
                    value: kept.last().copied().unwrap_or_default(),
                })
            }
            Some(previous) => previous + value,
        };
        if index >= limit {
            return Err(MaskDecodeError::OutOfRange {
                position,
                value: index,
                limit,
            });
        }
        // In range of a 32-bit-addressable matrix, so it fits.
        kept.push(index as u32);
        previous = Some(index);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(fan_in: u32, fan_out: u32, kept: &[u32]) -> LayerMask {
        let mask = encode_layer(fan_in, fan_out, kept);
        assert_eq!(decode_layer(&mask).as_deref(), Ok(kept));
        mask
    }

    fn with(encoding: Encoding, fan_in: u32, fan_out: u32) -> LayerMask {
        LayerMask {
            fan_in,
            fan_out,
            encoding: Some(encoding),
        }
    }

    fn is_roaring(mask: &LayerMask) -> bool {
        matches!(mask.encoding, Some(Encoding::Roaring(_)))
    }

    #[test]
    fn dense_roundtrips_as_roaring() {
        let kept: Vec<u32> = (0..1310 * 1310).collect();
        let mask = roundtrip(1310, 1310, &kept);
        assert!(is_roaring(&mask));
        let Some(Encoding::Roaring(bytes)) = &mask.encoding else {
            unreachable!()
        };
        assert!(bytes.len() < 1000, "run containers keep dense masks tiny");
    }

    #[test]
    fn half_dense_roundtrips_as_roaring() {
        let kept: Vec<u32> = (0..200_000).filter(|i| (i * 7919) % 3 != 0).collect();
        assert!(is_roaring(&roundtrip(400, 500, &kept)));
    }

    #[test]
    fn sparse_roundtrips_as_sorted_indices() {
        let kept = [3, 70_000, 140_000, 1_000_000];
        assert!(!is_roaring(&roundtrip(1310, 1310, &kept)));
        let kept = [0, 1, 5, 9, 63];
        assert!(!is_roaring(&roundtrip(8, 8, &kept)));
    }

    #[test]
    fn empty_roundtrips() {
        let mask = roundtrip(4, 8, &[]);
        assert_eq!(mask.encoding, Some(Encoding::SortedIndices(Vec::new())));
        roundtrip(0, 0, &[]);
    }

    #[test]
    fn largest_index_roundtrips() {
        roundtrip(65536, 65536, &[0, u32::MAX]);
    }

    #[test]
    fn unsorted_or_duplicate_input_encodes_to_an_error() {
        assert!(decode_layer(&encode_layer(8, 8, &[5, 3])).is_err());
        assert!(decode_layer(&encode_layer(8, 8, &[3, 3])).is_err());
    }

    #[test]
    fn missing_encoding_and_oversized_matrix_are_rejected() {
        let mask = LayerMask {
            fan_in: 2,
            fan_out: 2,
            encoding: None,
        };
        assert_eq!(decode_layer(&mask), Err(MaskDecodeError::MissingEncoding));
        let mask = with(Encoding::SortedIndices(vec![]), u32::MAX, 3);
        assert!(matches!(
            decode_layer(&mask),
            Err(MaskDecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn packed_garbage_is_rejected() {
        let cases: [(&[u8], MaskDecodeError); 5] = [
            (&[0x80], MaskDecodeError::Truncated { offset: 0 }),
            (
                &[0xff, 0xff, 0xff, 0xff, 0x10],
                MaskDecodeError::VarintOverflow { offset: 0 },
            ),
            (
                &[0xff, 0xff, 0xff, 0xff, 0x8f, 0x00],
                MaskDecodeError::VarintOverflow { offset: 0 },
            ),
            (
                &[1, 0],
                MaskDecodeError::Duplicate {
                    position: 1,
                    value: 1,
                },
            ),
            (
                &[60, 4],
                MaskDecodeError::OutOfRange {
                    position: 1,
                    value: 64,
                    limit: 64,
                },
            ),
        ];
        for (bytes, expected) in cases {
            let mask = with(Encoding::SortedIndices(bytes.to_vec()), 8, 8);
            assert_eq!(decode_layer(&mask), Err(expected), "{bytes:?}");
        }
    }

    #[test]
    fn roaring_garbage_is_rejected() {
        let Some(Encoding::Roaring(good)) =
            encode_layer(100, 100, &(0..5000).collect::<Vec<_>>()).encoding
        else {
            unreachable!()
        };
        // Out of range for a smaller matrix.
        let small = with(Encoding::Roaring(good.clone()), 10, 10);
        assert!(matches!(
            decode_layer(&small),
            Err(MaskDecodeError::OutOfRange { .. })
        ));
        // Trailing bytes.
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            decode_layer(&with(Encoding::Roaring(long), 100, 100)),
            Err(MaskDecodeError::TrailingBytes(1))
        );
        // An array container (no-run format) holding an unsorted pair, 9 before 3.
        let mut unsorted = Vec::new();
        unsorted.extend_from_slice(&12346u32.to_le_bytes());
        unsorted.extend_from_slice(&1u32.to_le_bytes());
        unsorted.extend_from_slice(&0u16.to_le_bytes()); // key
        unsorted.extend_from_slice(&1u16.to_le_bytes()); // cardinality - 1
        unsorted.extend_from_slice(&16u32.to_le_bytes()); // offset
        unsorted.extend_from_slice(&9u16.to_le_bytes());
        unsorted.extend_from_slice(&3u16.to_le_bytes());
        assert!(matches!(
            decode_layer(&with(Encoding::Roaring(unsorted.clone()), 8, 8)),
            Err(MaskDecodeError::Roaring(_))
        ));
        // The same with a duplicate.
        let n = unsorted.len();
        unsorted[n - 2..].copy_from_slice(&9u16.to_le_bytes());
        assert!(matches!(
            decode_layer(&with(Encoding::Roaring(unsorted), 8, 8)),
            Err(MaskDecodeError::Roaring(_))
        ));
        // Every truncation of a valid bitmap, and pseudo-random bytes: errors, never panics.
        for cut in 0..good.len() {
            let mask = with(Encoding::Roaring(good[..cut].to_vec()), 100, 100);
            assert!(decode_layer(&mask).is_err(), "cut at {cut}");
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let len = round % 64;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if round % 2 == 0 && len >= 4 {
                // Valid cookies, to get past the first check.
                let cookie = if round % 4 == 0 {
                    12346u32
                } else {
                    12347 | (state as u32 & 0xffff_0000)
                };
                bytes[..4].copy_from_slice(&cookie.to_le_bytes());
            }
            let _ = decode_layer(&with(Encoding::Roaring(bytes.clone()), 1310, 1310));
            let _ = decode_layer(&with(Encoding::SortedIndices(bytes), 1310, 1310));
        }
    }

    #[test]
    fn run_container_claiming_everything_is_rejected_before_collecting() {
        // One run container covering all 2^16 values of each of 2^16 keys would be 2^32
        // indices; in range checks stop it before any allocation.
        let full: RoaringBitmap = (0..=u32::MAX).step_by(1 << 16).collect();
        let mut bitmap = full;
        bitmap.insert_range(0..=u32::MAX);
        bitmap.optimize();
        let mut bytes = Vec::new();
        bitmap.serialize_into(&mut bytes).unwrap();
        let mask = with(Encoding::Roaring(bytes), 1000, 1000);
        assert!(matches!(
            decode_layer(&mask),
            Err(MaskDecodeError::OutOfRange { .. })
        ));
    }
}
