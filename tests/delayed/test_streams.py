"""Event streams of tesla_netcvr.md 2: the nine-click fixture (2.2), baselines, label rules (10.1)."""
import numpy as np
import pytest

from rankjax.delayed import streams as S

W, A = 864, 259200
D4 = 4 * 86400
# Clicks A..I of section 2.2, all at t_c = 0.
PAY = [600, 7200, -1, 600, 600, 7200, 7200, D4, 600]
REF = [-1, -1, -1, 900, 36600, 7500, 43200, -1, 600 + D4]
CLICKS = dict(click_ts=np.zeros(9, np.int64), pay_ts=np.array(PAY), refund_ts=np.array(REF))
A_, B_, C_, D_, E_, F_, G_, H_, I_ = range(9)


def _events(s):
  """Set of (click, sample_ts, tower, label) tuples; also checks the time order."""
  assert np.all(np.diff(s["sample_ts"]) >= 0)
  return sorted(zip(s["click_id"].tolist(), s["sample_ts"].tolist(), s["tower"].tolist(),
                    s["y_stream"].tolist()))


def _expect(rows):
  return sorted((c, t, tw, float(y)) for c, t, tw, y in rows)


CV, RF = S.CVR, S.RFR
TESLA = [
    (A_, 864, CV, 1), (A_, 1464, RF, 0),
    (B_, 864, CV, 0), (B_, 7200, CV, 1), (B_, 8064, RF, 0),
    (C_, 864, CV, 0),
    (D_, 864, CV, 1), (D_, 900, RF, 1),
    (E_, 864, CV, 1), (E_, 1464, RF, 0), (E_, 36600, RF, 1),
    (F_, 864, CV, 0), (F_, 7200, CV, 1), (F_, 7500, RF, 1),
    (G_, 864, CV, 0), (G_, 7200, CV, 1), (G_, 8064, RF, 0), (G_, 43200, RF, 1),
    (H_, 864, CV, 0),
    (I_, 864, CV, 1), (I_, 1464, RF, 0),
]


def test_tesla_fixture():
  s = S.tesla(CLICKS, W, W)
  assert _events(s) == _expect(TESLA)
  kinds = {(c, t): k for c, t, k in zip(s["click_id"], s["sample_ts"], s["event_type"])}
  assert kinds[(B_, 7200)] == S.E3 and kinds[(G_, 43200)] == S.E6 and kinds[(D_, 900)] == S.E4
  assert kinds[(A_, 1464)] == S.E5 and kinds[(C_, 864)] == S.E2 and kinds[(A_, 864)] == S.E1
  assert s["delay_v_h"][s["click_id"] == B_][0] == pytest.approx(2.0)


PAYERS = [A_, B_, D_, E_, F_, G_, I_]  # attributed purchases (H pays after 4 days)
REFUNDS = {D_: 900, E_: 36600, F_: 7500, G_: 43200}  # I refunds after 4 days


def _rfr_fnc(cvr_pos):
  return [(c, t, RF, 0) for c, t, tw, y in cvr_pos if y == 1] + [
      (c, t, RF, 1) for c, t in REFUNDS.items()]


def test_fnc_fixture():
  cvr = [(c, 0, CV, 0) for c in range(9)] + [(c, PAY[c], CV, 1) for c in PAYERS]
  assert _events(S.fnc(CLICKS)) == _expect(cvr + _rfr_fnc(cvr))


def _esdfm_cvr():
  first = [(c, W, CV, int(0 <= PAY[c] <= W)) for c in range(9)]
  late = [(c, PAY[c], CV, 1) for c in PAYERS if PAY[c] > W]
  return first, late


def test_esdfm_fixture():
  first, late = _esdfm_cvr()
  s = S.esdfm(CLICKS, W)
  assert _events(s) == _expect(first + late + _rfr_fnc(first + late))
  assert set(s["click_id"][(s["is_delayed"] == 1) & (s["tower"] == CV)]) == {B_, F_, G_}


def test_defer_fixture():
  first, _ = _esdfm_cvr()
  second = [(c, PAY[c], CV, 1) for c in PAYERS] + [(c, A, CV, 0) for c in (C_, H_)]
  s = S.defer(CLICKS, W)
  assert _events(s) == _expect(first + second + _rfr_fnc(first + second))
  assert np.bincount(s["click_id"][s["tower"] == CV]).tolist() == [2] * 9  # two events per click


def test_ddfm_fixture():
  first, late = _esdfm_cvr()
  real_neg = [(c, A, CV, 0) for c in (C_, H_)]
  s = S.ddfm(CLICKS, W)
  assert _events(s) == _expect(first + late + real_neg + _rfr_fnc(first + late))


def test_oracle_and_bdl_fixtures():
  pay = [int(c in PAYERS) for c in range(9)]
  oracle = [(c, 0, CV, pay[c]) for c in range(9)] + [(c, 0, RF, int(c in REFUNDS)) for c in PAYERS]
  assert _events(S.oracle(CLICKS)) == _expect(oracle)
  bdl = [(c, A, CV, pay[c]) for c in range(9)] + [
      (c, PAY[c] + A, RF, int(c in REFUNDS)) for c in PAYERS]
  assert _events(S.bdl(CLICKS)) == _expect(bdl)


def test_window_boundaries_strict_attribution_inclusive_observation():
  clicks = dict(click_ts=np.zeros(4, np.int64), pay_ts=np.array([W, W + 1, A, A - 1]),
                refund_ts=np.array([W + W, -1, -1, A - 1 + A]))
  s = S.tesla(clicks, W, W)
  ev = _events(s)
  assert (0, W, CV, 1.0) in ev            # pay exactly at W: in-window (<=)
  assert (1, W, CV, 0.0) in ev and (1, W + 1, CV, 1.0) in ev
  assert all(c != 2 or y == 0 for c, _, _, y in ev)  # pay exactly at 3 days: not attributed
  assert (0, W + W, RF, 1.0) in ev and not any(c == 0 and tw == RF and y == 0 for c, _, tw, y in ev)
  assert not any(c == 3 and tw == RF and y == 1 for c, _, tw, y in ev)  # refund at 3 days: none


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_property_each_payer_once_positive_each_nonpayer_once_negative(seed):
  rng = np.random.default_rng(seed)
  n = 3000
  c = rng.integers(0, 10 * 86400, n)
  pay = np.where(rng.random(n) < 0.4, c + rng.choice([0, 1, W - 1, W, W + 1, A - 1, A, A + 1],
                                                      n) * (rng.random(n) < 0.3)
                 + rng.integers(0, 2 * A, n) * (rng.random(n) >= 0.3), -1)
  ref = np.where((pay >= 0) & (rng.random(n) < 0.5), pay + rng.integers(0, 2 * A, n), -1)
  clicks = dict(click_ts=c, pay_ts=pay, refund_ts=ref)
  lab = S.labels(clicks)
  s = S.tesla(clicks, W, W)
  cv = s["tower"] == S.CVR
  pos = np.bincount(s["click_id"][cv & (s["y_stream"] == 1)], minlength=n)
  neg = np.bincount(s["click_id"][cv & (s["y_stream"] == 0)], minlength=n)
  np.testing.assert_array_equal(pos, lab["pay"].astype(int))
  np.testing.assert_array_equal(neg[~lab["pay"]], 1)
  rf = ~cv
  rpos = np.bincount(s["click_id"][rf & (s["y_stream"] == 1)], minlength=n)
  np.testing.assert_array_equal(rpos, lab["refund"].astype(int))
  assert np.all(np.diff(s["sample_ts"]) >= 0)


def test_miss_window_labels():
  s = S.miss(CLICKS, W)
  first = (s["event_type"] == S.IN_WINDOW) & (s["tower"] == CV)
  # A pays at 600 s: inside W (864) and 2W/3 (576)? no; W/2 (432)? no.
  a = first & (s["click_id"] == A_)
  assert s["y_stream"][a][0] == 1 and s["y_w2"][a][0] == 0 and s["y_w1"][a][0] == 0
  late = (s["tower"] == CV) & (s["is_delayed"] == 1)
  assert np.all(s["y_w1"][late] == 1) and np.all(s["y_w2"][late] == 1)
