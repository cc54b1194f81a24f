import os

import pytest
from hypothesis import settings

# golden/ holds emitted build folders (each tb/ has a test_cocotb.py), not tests of this suite
collect_ignore = ["golden"]

# CI profile: deterministic and bounded, so the suite's time is predictable on 2 cores.
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Verilator's runtime library compiled once for the session's many builds (synth/objcache.py):
# the cocotb runners build in this process's environment, python -m gen in tools.child_env.
from synth.tools import objcache_env  # noqa: E402

os.environ.update(objcache_env())


# The real workloads of bench tasd (bench/workloads.py), loaded once per test session.
@pytest.fixture(scope="session")
def mlp():
    from bench import workloads
    return workloads.digits_mlp()


@pytest.fixture(scope="session")
def minilm():
    from bench import workloads
    return workloads.minilm_layers()
