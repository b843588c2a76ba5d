"""``python -m benchmark.docs [--results DIR] [--docs DIR] [--models FILE]``."""

from benchmark.docs.generate import main

raise SystemExit(main())
