"""Collation of one run: what happened to every (point, age, slice), as one answer and one file to rerun.

One concern per module:

* ``facts``   — JobFacts: what collation needs from one Batch job description;
* ``join``    — collate(): plan + Map results + job facts + metrics -> Summary (pure);
* ``lineage`` — where the run came from and what it was estimated to cost (pure);
* ``resources`` — requested against used per age, and the next run's vCPUs/memory (pure);
* ``costs``   — the cost the run incurred: attempt seconds x capacity, plus transitions (pure);
* ``trust``   — whether a job's training looks wrong, and why (pure);
* ``render``  — summary.json, summary.csv, the SNS subject and message (pure);
* ``retry``   — retry-manifest.yaml: the original manifest narrowed to the failed pairs or points (pure);
* ``store``   — the AWS reads (jobs, array children, metrics, the manifest) and the file writer;
* ``run``     — collate_run(): the reads, the join and the writes, for the Lambda.
"""

from __future__ import annotations

from agesweep.collation.facts import JobFacts
from agesweep.collation.join import collate
from agesweep.collation.run import collate_run

__all__ = ["JobFacts", "collate", "collate_run"]
