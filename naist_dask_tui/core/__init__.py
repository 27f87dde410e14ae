"""The headless core: cluster control, SGE, scheduler probing, compute sessions, settings.

Nothing under this package may import textual (tests/unit/test_headless.py checks it).
"""
