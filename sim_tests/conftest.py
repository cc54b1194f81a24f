import os

from hypothesis import settings

# CI profile: deterministic and bounded, so the suite's time is predictable on 2 cores.
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
