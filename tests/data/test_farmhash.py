"""FarmHash Fingerprint64 against published-library values and the compiled implementation."""
import random

import numpy as np
import pytest

from rankjax.data import farmhash

# Values of farmhash::Fingerprint64 (pyfarmhash 0.5.1, farmhash.fingerprint64) for each length
# class of the algorithm: 0, 1-3, 4-7, 8-16, 17-32, 33-64 and > 64 bytes.
KNOWN = {
    "": 11160318154034397263,
    "a": 12917804110809363939,
    "hello": 13009744463427800296,
    "12345": 16550883754376084728,
    "abcdefgh": 18368443631171807497,
    "x" * 17: 11306081951414300581,
    "y" * 40: 276292113409495006,
    "z" * 65: 8299915583762718517,
    "中文": 6104483040626166955,
}


@pytest.mark.parametrize("s,want", sorted(KNOWN.items()))
def test_known_vectors(s, want):
  assert farmhash.fingerprint64(s) == want
  assert farmhash.fingerprint64(s.encode("utf-8")) == want


def test_matches_pyfarmhash_on_every_length():
  native = pytest.importorskip("farmhash")
  rng = random.Random(0)
  for n in list(range(0, 140)) + [200, 511, 1000]:
    s = bytes(rng.getrandbits(8) for _ in range(n))
    assert farmhash.fingerprint64(s) == native.fingerprint64(s), n


def test_bucketize_is_fingerprint_mod_bucket():
  vals = np.array(["a", "hello", "a", "", "x" * 17], dtype=object)
  got = farmhash.bucketize(vals, 655360)
  want = [farmhash.fingerprint64(v) % 655360 for v in vals]
  np.testing.assert_array_equal(got, want)
