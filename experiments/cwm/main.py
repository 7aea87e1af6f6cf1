"""Runs one watch-time configuration and writes results.json into --workdir."""
from rankjax.watchtime import configs

if __name__ == "__main__":
  configs.main()
