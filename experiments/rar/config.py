r"""RAR (rar.md) on crossstage_sim: DIN / DCN-v2 with and without the recall-augmented plug-in.

  python -m experiments.rar.main --config=experiments/rar/config.py:runlocal --workdir=/tmp/rar
  python -m experiments.rar.main --config=experiments/rar/config.py:seed=1 --workdir=/tmp/rar_s1

Variants are ``<backbone>/<kind>`` with kind base | full | no_u2u | no_i2i | alpha1 (no L_ep) |
simhash (SimHash selection instead of exact). Options: seed, preset (tiny | small), users / items / requests (override the preset), epochs.
"""
import ml_collections

from rankjax.experiments_lib import args as args_lib

VARIANTS = ("din/base", "din/full", "dcnv2/base", "dcnv2/full", "din/no_u2u", "din/no_i2i",
            "din/alpha1", "din/simhash")


def get_config(arg: str = ""):
  opts = args_lib.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.seed = int(opts.get("seed", 2024))
  c.sim = ml_collections.ConfigDict(dict(
      preset=str(opts.get("preset", "tiny")), num_users=int(opts.get("users", 0)),
      num_items=int(opts.get("items", 0)), num_requests=int(opts.get("requests", 0))))
  c.embed_dim = 16
  c.width = 32          # d'
  c.k_l, c.k_r = 10, 20
  c.alpha = 0.9
  c.simhash_bits = 64
  c.simhash_shortlist = 0   # 0: literal Hamming top-k (rar.md 2.1)
  c.lr = 1e-3
  c.batch_size = 2048
  c.epochs = int(opts.get("epochs", 10))
  c.patience = 2
  c.two_tower = ml_collections.ConfigDict(dict(dim=16, epochs=5, batch_size=1024,
                                               temperature=0.1))
  c.variants = VARIANTS
  if opts.get("runlocal"):
    c.sim.num_users, c.sim.num_items, c.sim.num_requests = 300, 1_000, 1_500
    c.epochs = 1
    c.two_tower.epochs = 1
    c.variants = ("din/base", "din/full")
  return c
