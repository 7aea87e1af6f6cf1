"""FarmHash ``Fingerprint64`` (farmhashna::Hash64) in pure Python.

CASCADE ids are ``Fingerprint64(utf-8 bytes) mod bucket``; the fingerprint is FarmHash's portable,
platform-independent 64-bit hash, so an independent implementation reproduces the published ids
exactly. The compiled ``pyfarmhash`` package computes the same function faster and is used when it
is installed; the tests check that both agree.
"""
from __future__ import annotations

import struct
from typing import Iterable

import numpy as np

_M = (1 << 64) - 1
_K0 = 0xc3a5c85c97cb3127
_K1 = 0xb492b66fbe98f273
_K2 = 0x9ae16a3b2f90404f


def _f64(s: bytes, i: int) -> int:
  return struct.unpack_from("<Q", s, i)[0]


def _f32(s: bytes, i: int) -> int:
  return struct.unpack_from("<I", s, i)[0]


def _rot(v: int, r: int) -> int:
  return v if r == 0 else ((v >> r) | (v << (64 - r))) & _M


def _shift_mix(v: int) -> int:
  return v ^ (v >> 47)


def _len16(u: int, v: int, mul: int) -> int:
  a = ((u ^ v) * mul) & _M
  a ^= a >> 47
  b = ((v ^ a) * mul) & _M
  b ^= b >> 47
  return (b * mul) & _M


def _len0to16(s: bytes) -> int:
  n = len(s)
  if n >= 8:
    mul = (_K2 + n * 2) & _M
    a = (_f64(s, 0) + _K2) & _M
    b = _f64(s, n - 8)
    c = (_rot(b, 37) * mul + a) & _M
    d = ((_rot(a, 25) + b) * mul) & _M
    return _len16(c, d, mul)
  if n >= 4:
    mul = (_K2 + n * 2) & _M
    a = _f32(s, 0)
    return _len16((n + (a << 3)) & _M, _f32(s, n - 4), mul)
  if n > 0:
    y = s[0] + (s[n >> 1] << 8)
    z = n + (s[n - 1] << 2)
    return (_shift_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
  return _K2


def _len17to32(s: bytes) -> int:
  n = len(s)
  mul = (_K2 + n * 2) & _M
  a = (_f64(s, 0) * _K1) & _M
  b = _f64(s, 8)
  c = (_f64(s, n - 8) * mul) & _M
  d = (_f64(s, n - 16) * _K2) & _M
  return _len16((_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M,
                (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)


def _len33to64(s: bytes) -> int:
  n = len(s)
  mul = (_K2 + n * 2) & _M
  a = (_f64(s, 0) * _K2) & _M
  b = _f64(s, 8)
  c = (_f64(s, n - 8) * mul) & _M
  d = (_f64(s, n - 16) * _K2) & _M
  y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
  z = _len16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
  e = (_f64(s, 16) * mul) & _M
  f = _f64(s, 24)
  g = ((y + _f64(s, n - 32)) * mul) & _M
  h = ((z + _f64(s, n - 24)) * mul) & _M
  return _len16((_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M,
                (e + _rot((f + a) & _M, 18) + g) & _M, mul)


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
  w, x, y, z = _f64(s, i), _f64(s, i + 8), _f64(s, i + 16), _f64(s, i + 24)
  a = (a + w) & _M
  b = _rot((b + a + z) & _M, 21)
  c = a
  a = (a + x + y) & _M
  b = (b + _rot(a, 44)) & _M
  return (a + z) & _M, (b + c) & _M


def fingerprint64(data: bytes | str) -> int:
  """FarmHash Fingerprint64 of ``data`` (a str is hashed as its UTF-8 bytes)."""
  s = data.encode("utf-8") if isinstance(data, str) else bytes(data)
  n = len(s)
  if n <= 16:
    return _len0to16(s)
  if n <= 32:
    return _len17to32(s)
  if n <= 64:
    return _len33to64(s)
  x = 81
  y = (81 * _K1 + 113) & _M
  z = (_shift_mix((y * _K2 + 113) & _M) * _K2) & _M
  v0 = v1 = w0 = w1 = 0
  x = (x * _K2 + _f64(s, 0)) & _M
  end = ((n - 1) // 64) * 64
  last64 = end + ((n - 1) & 63) - 63
  i = 0
  while True:
    x = (_rot((x + y + v0 + _f64(s, i + 8)) & _M, 37) * _K1) & _M
    y = (_rot((y + v1 + _f64(s, i + 48)) & _M, 42) * _K1) & _M
    x ^= w1
    y = (y + v0 + _f64(s, i + 40)) & _M
    z = (_rot((z + w0) & _M, 33) * _K1) & _M
    v0, v1 = _weak32(s, i, (v1 * _K1) & _M, (x + w0) & _M)
    w0, w1 = _weak32(s, i + 32, (z + w1) & _M, (y + _f64(s, i + 16)) & _M)
    z, x = x, z
    i += 64
    if i == end:
      break
  mul = (_K1 + ((z & 0xff) << 1)) & _M
  i = last64
  w0 = (w0 + ((n - 1) & 63)) & _M
  v0 = (v0 + w0) & _M
  w0 = (w0 + v0) & _M
  x = (_rot((x + y + v0 + _f64(s, i + 8)) & _M, 37) * mul) & _M
  y = (_rot((y + v1 + _f64(s, i + 48)) & _M, 42) * mul) & _M
  x ^= (w1 * 9) & _M
  y = (y + v0 * 9 + _f64(s, i + 40)) & _M
  z = (_rot((z + w0) & _M, 33) * mul) & _M
  v0, v1 = _weak32(s, i, (v1 * mul) & _M, (x + w0) & _M)
  w0, w1 = _weak32(s, i + 32, (z + w1) & _M, (y + _f64(s, i + 16)) & _M)
  z, x = x, z
  return _len16((_len16(v0, w0, mul) + _shift_mix(y) * _K0 + z) & _M,
                (_len16(v1, w1, mul) + x) & _M, mul)


def _native():
  try:
    import farmhash as native  # pyfarmhash, optional
  except ImportError:
    return None
  return getattr(native, "fingerprint64", None)


def fingerprint64_fast(data: bytes | str) -> int:
  fn = _native()
  if fn is None:
    return fingerprint64(data)
  return int(fn(data.encode("utf-8") if isinstance(data, str) else data))


def bucketize(values: Iterable[str], bucket: int) -> np.ndarray:
  """``Fingerprint64(utf-8(v)) mod bucket`` for each string, hashing each distinct string once."""
  values = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
  if values.size == 0:
    return np.zeros((0,), np.int64)
  uniq, inverse = np.unique(values.astype(str), return_inverse=True)
  fn = _native() or fingerprint64
  ids = np.array([int(fn(u.encode("utf-8"))) % bucket for u in uniq.tolist()], np.int64)
  return ids[inverse.reshape(-1)]
