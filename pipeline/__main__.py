"""`python -m pipeline <verb>`."""

from pipeline.cli import main

raise SystemExit(main())
