"""The top of any config: one entry point for fixed and flexible builds."""
from __future__ import annotations

from .config import ArrayConfig
from .flex import FlexAccelerator
from .shared import SharedModules
from .top import HSSAccelerator

__all__ = ["accelerator_for"]


def accelerator_for(config: ArrayConfig, *,
                    shared: SharedModules | None = None) -> HSSAccelerator:
    """``HSSAccelerator`` for a fixed config, ``FlexAccelerator`` (its subclass) for a
    flexible one (``config.flexible``). The RTL differs, lanes and a mode field; the
    protocol does not, so that callers need not ask which kind they build."""
    if not isinstance(config, ArrayConfig):
        raise TypeError(f"config must be an AcceleratorConfig or a FlexConfig, not {config!r}")
    return (FlexAccelerator if config.flexible else HSSAccelerator)(config, shared=shared)
