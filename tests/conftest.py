"""Hypothesis settings for the property-based tests (tests/test_params_fuzz.py).

`ci`, the default: a fixed number of examples drawn from a seed derived from each test, so every
run (CI's included) tries the same inputs and takes a few seconds; nothing is written to a
.hypothesis database. `explore`: many more, freshly random examples, for a hunt by hand:

    .venv/bin/python -m pytest tests/test_params_fuzz.py --hypothesis-profile=explore
"""
from hypothesis import settings

settings.register_profile("ci", max_examples=100, derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.register_profile("explore", max_examples=5000, database=None, deadline=None, print_blob=True)
settings.load_profile("ci")
