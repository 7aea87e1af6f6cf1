"""rankjax.train.progress: log lines without a terminal, a tqdm bar with one."""
import io

from rankjax.train import progress


def test_log_lines_name_the_loop_count_and_time_left():
  out = io.StringIO()
  with progress.Progress(4, "mal_natal", every_s=0, stream=out) as p:
    p.update()
    p.update(2, loss=0.5)
  lines = out.getvalue().splitlines()
  assert len(lines) == 2
  assert lines[0].startswith("mal_natal: 1/4 steps, ")
  assert lines[1].startswith("mal_natal: 3/4 steps, ") and "s left" in lines[1]
  assert lines[1].endswith("loss 0.5")


def test_interval_and_silence():
  out = io.StringIO()
  with progress.Progress(None, "chunks", unit="chunk", every_s=3600, stream=out) as p:
    for _ in range(10):
      p.update()
  assert out.getvalue() == ""  # the interval has not passed
  with progress.Progress(10, "x", every_s=-1, stream=out) as p:
    p.update()
  assert out.getvalue() == ""  # a negative interval prints nothing


def test_bar_when_asked():
  out = io.StringIO()
  with progress.Progress(3, "pretrain single", stream=out, bar=True) as p:
    for _ in range(3):
      p.update()
  assert "pretrain single" in out.getvalue() and "3/3" in out.getvalue()
