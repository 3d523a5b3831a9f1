"""`python -m agesweep.cli`: the `agesweep` console script."""

from agesweep.cli import app

app()
