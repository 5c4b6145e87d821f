"""Shared test settings: JAX on the CPU, hypothesis profiles sized for a shared 2-core machine."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from hypothesis import settings  # noqa: E402

settings.register_profile("default", max_examples=60, deadline=None)
settings.load_profile("default")
