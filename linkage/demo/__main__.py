"""``python -m linkage.demo OUT --persons N --seed S --profile P`` writes demo data to ``OUT``."""

from __future__ import annotations

from linkage.demo.cli import main

if __name__ == "__main__":
    main()
