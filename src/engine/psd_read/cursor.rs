//! The bounded big-endian reader every part of the PSD decoder reads through: each take is
//! checked against the bytes that remain, and running out is a [`PsdReadError::Truncated`]
//! naming the section being read, never a panic.

use super::{PsdReadError, Result};

/// A big-endian cursor over untrusted bytes; `what` names the section for truncation errors.
pub(super) struct Bytes<'a> {
    pub(super) buf: &'a [u8],
    pub(super) what: &'static str,
}

impl<'a> Bytes<'a> {
    pub(super) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(PsdReadError::Truncated(self.what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(super) fn i16(&mut self) -> Result<i16> {
        self.array().map(i16::from_be_bytes)
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn i32(&mut self) -> Result<i32> {
        self.array().map(i32::from_be_bytes)
    }

    /// A `u32`-length-prefixed block.
    pub(super) fn block(&mut self) -> Result<Bytes<'a>> {
        let n = self.u32()? as usize;
        Ok(Bytes::new(self.take(n)?, self.what))
    }
}
