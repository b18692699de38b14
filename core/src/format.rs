//! The model file envelope: a fixed header in front of the postcard payload.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"CIFHEMDL"
//! 8       2     format version, little endian (FORMAT_VERSION)
//! 10      2     reserved, zero
//! 12      4     payload length in bytes, little endian
//! 16      4     CRC-32 (IEEE) of the payload, little endian
//! 20      ...   postcard payload: a [`crate::ModelFile`]
//! ```
//! The header is checked before postcard sees a byte, so a truncated, corrupt or foreign file is
//! refused with a precise [`ModelError`] instead of a confusing decode error.
use crate::error::ModelError;

/// First eight bytes of every cifhe model file.
pub const MAGIC: [u8; 8] = *b"CIFHEMDL";
/// The payload layout this build writes. Bump it on any incompatible change, and keep reading the
/// older layouts ([`crate::model`] decodes each of them into the current one).
///
/// - 1: the first layout.
/// - 2: each lookup has a centre (`Lookup::centre`); a version 1 lookup reads as centre 0.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest layout this build still reads.
pub const OLDEST_VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 20;

/// Checks the header and returns the payload it guards, with its layout version.
pub fn open(bytes: &[u8]) -> Result<(u16, &[u8]), ModelError> {
    if bytes.len() < HEADER_LEN {
        // A short file that starts like ours is truncated; anything else is foreign.
        let n = bytes.len().min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(ModelError::BadMagic);
        }
        return Err(ModelError::TooShort { len: bytes.len() });
    }
    if bytes[..8] != MAGIC {
        return Err(ModelError::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(ModelError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    let stored = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(ModelError::LengthMismatch { header: len, actual: payload.len() });
    }
    let computed = crc32(payload);
    if computed != stored {
        return Err(ModelError::ChecksumMismatch { stored, computed });
    }
    Ok((version, payload))
}

/// Writes the header for `payload` into `out[..HEADER_LEN]`.
pub fn write_header(payload: &[u8], out: &mut [u8]) -> Result<(), ModelError> {
    let len = u32::try_from(payload.len()).map_err(|_| ModelError::BufferTooSmall)?;
    let header = out.get_mut(..HEADER_LEN).ok_or(ModelError::BufferTooSmall)?;
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[10..12].copy_from_slice(&[0, 0]);
    header[12..16].copy_from_slice(&len.to_le_bytes());
    header[16..20].copy_from_slice(&crc32(payload).to_le_bytes());
    Ok(())
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and PNG), table-driven; the table is built at compile time.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn header_round_trip_and_refusals() {
        let payload = b"hello payload";
        let mut file = [0u8; HEADER_LEN + 13];
        write_header(payload, &mut file).unwrap();
        file[HEADER_LEN..].copy_from_slice(payload);
        assert_eq!(open(&file).unwrap(), (FORMAT_VERSION, &payload[..]));
        assert_eq!(open(&file[..HEADER_LEN + 5]), Err(ModelError::LengthMismatch { header: 13, actual: 5 }));
        assert_eq!(open(&file[..5]), Err(ModelError::TooShort { len: 5 }));
        assert_eq!(open(b"GIF89a"), Err(ModelError::BadMagic));
        let mut corrupt = file;
        corrupt[HEADER_LEN + 3] ^= 0x40;
        assert!(matches!(open(&corrupt), Err(ModelError::ChecksumMismatch { .. })));
        let mut older = file;
        older[8] = 1;
        assert_eq!(open(&older).unwrap().0, 1);
        let mut future = file;
        future[8] = 9;
        assert_eq!(open(&future), Err(ModelError::UnsupportedVersion { found: 9, supported: FORMAT_VERSION }));
    }
}
