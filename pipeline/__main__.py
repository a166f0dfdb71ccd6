"""`python -m pipeline <verb>`."""

from pipeline.cli import console

console()
