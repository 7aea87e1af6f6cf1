"""Writes experiments/ctr/example/clicks.csv: 4,000 synthetic impressions (user, item, category,
price, hour, click) whose click rate depends on a user x category affinity and the price, so a
model has something to learn. Deterministic:  python experiments/ctr/example/make_data.py"""
import os

import numpy as np


def main():
  rng = np.random.default_rng(7)
  n, users, items, cats = 4000, 200, 150, 8
  user = rng.integers(users, size=n)
  item = rng.integers(items, size=n)
  cat = item % cats
  price = np.round(rng.lognormal(3.0, 0.6, size=n), 2)
  hour = rng.integers(24, size=n)
  taste = rng.normal(size=(users, cats))
  logit = 1.5 * taste[user, cat] - 0.02 * (price - 20) - 1.0
  click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clicks.csv")
  with open(path, "w") as f:
    f.write("user,item,category,price,hour,click\n")
    for r in zip(user, item, cat, price, hour, click):
      f.write(f"u{r[0]},i{r[1]},c{r[2]},{r[3]},{r[4]},{r[5]}\n")


if __name__ == "__main__":
  main()
