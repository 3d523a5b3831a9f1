"""Aladyn fixed-phi per-age trainer (``python -m training.train``) and synthetic inputs
(``python -m training.synth``). See README.md, "The trainer"."""
