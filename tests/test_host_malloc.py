"""rankjax/host_malloc.py: the glibc thresholds are set on import, can be turned off, and a bad
value is refused with the variable's name."""
import platform
import subprocess
import sys

import pytest

from rankjax import host_malloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _in_child(code: str, **env) -> str:
  import os  # pylint: disable=g-import-not-at-top
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, **env}, check=False)
  return out.stdout.strip() + out.stderr.strip()[-400:]


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_import_sets_thresholds_and_can_be_turned_off():
  code = "import rankjax; from rankjax import host_malloc as h; print(h.applied())"
  on = _in_child(code, RANKJAX_MALLOC_TUNING="1", RANKJAX_MALLOC_MMAP_MIB="64")
  assert "'mmap_threshold_mib': 64" in on and "'trim_threshold_mib': 256" in on
  assert "'arena_max': 1" in on
  assert _in_child(code, RANKJAX_MALLOC_TUNING="0").startswith("None")


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_big_buffers_stay_mapped_after_configure():
  """A freed 64 MiB block is served again from the heap: the second allocation takes almost no
  new page faults (with glibc's defaults it is a fresh mmap and faults every page)."""
  code = """
import ctypes, resource, sys
import rankjax  # applies the settings unless RANKJAX_MALLOC_TUNING=0
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
n = 64 << 20
def touch():
  p = libc.malloc(n)
  ctypes.memset(p, 1, n)
  libc.free(ctypes.c_void_p(p))
touch()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
  touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""
  def faults(mode):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"RANKJAX_MALLOC_TUNING": "1" if mode == "on" else "0",
                              "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": ":".join(sys.path)}, check=True)
    return int(out.stdout.split()[-1])
  pages = (64 << 20) // 4096
  assert faults("off") > 4 * pages  # five fresh mmaps
  assert faults("on") < pages // 4


@pytest.mark.skipif(not GLIBC, reason="glibc only")
@pytest.mark.parametrize("value", ["lots", "-5"])
def test_bad_threshold_names_the_variable(monkeypatch, value):
  monkeypatch.setenv("RANKJAX_MALLOC_TRIM_MIB", value)
  with pytest.raises(ValueError, match=f"RANKJAX_MALLOC_TRIM_MIB='{value}'"):
    host_malloc.configure(force=True)
