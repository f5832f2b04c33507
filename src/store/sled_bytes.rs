//! The byte-level reading and writing the stored units share: a cursor that names the unit it reads when its
//! bytes run short, and LEB128 varints.

use super::{StoreError, StoreResult};

pub(super) fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

/// A cursor over stored bytes that names the unit it reads when they run short.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) unit: &'a str,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(corrupt(format!("{} is truncated", self.unit)));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    pub(super) fn u32(&mut self) -> StoreResult<u32> {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(raw))
    }
    pub(super) fn u64(&mut self) -> StoreResult<u64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(raw))
    }
    pub(super) fn varint(&mut self) -> StoreResult<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt(format!("{} holds an overlong number", self.unit)))
    }
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
