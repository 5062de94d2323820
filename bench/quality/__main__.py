"""`python -m bench.quality`: the quality table of every corpus (bench/quality/table.py)."""

from .table import main

raise SystemExit(main())
