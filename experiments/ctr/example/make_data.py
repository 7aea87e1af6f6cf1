"""Writes experiments/ctr/example/clicks.csv: 4,000 synthetic impressions (user, item, category,
price, hour, click) whose click rate depends on the category, the price, the hour and a user x
category affinity, so that a model has something to learn in a few epochs. Deterministic:  python experiments/ctr/example/make_data.py"""
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
  cat_effect = np.linspace(-1.5, 1.5, cats)
  evening = (hour >= 18).astype(float)
  logit = (cat_effect[cat] - 1.2 * (np.log(price) - 3.0) / 0.6 + 0.8 * evening
           + 0.8 * taste[user, cat] - 0.8)
  click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clicks.csv")
  with open(path, "w") as f:
    f.write("user,item,category,price,hour,click\n")
    for r in zip(user, item, cat, price, hour, click):
      f.write(f"u{r[0]},i{r[1]},c{r[2]},{r[3]},{r[4]},{r[5]}\n")


if __name__ == "__main__":
  main()
