"""`python -m qa` runs the command line."""

from .frontends.cli import main

raise SystemExit(main())
