"""Amaranth 0.5 components of the HSS accelerator (see the README for the port map)."""
from .config import (AcceleratorConfig, ArrayConfig, FlexConfig, build_config, is_flexible,
                     value_shape)
from .layouts import act_group_layout, group_layout, offsets_layout, pack_group, pack_values
from .selector import GHScatter, GHSelector
from .pe import PE, PE_LATENCY, Accumulator, AdderTree, Multipliers
from .array import PEArray
from .decompressor import HSSDecompressor
from .top import LATENCY, HSSAccelerator, tile_layout, weight_beat_layout
from .flex import FlexAccelerator
from .accelerator import accelerator_for

__all__ = [
    "ArrayConfig", "AcceleratorConfig", "FlexConfig", "build_config", "is_flexible",
    "value_shape", "group_layout", "act_group_layout", "offsets_layout", "pack_group",
    "pack_values", "GHSelector", "GHScatter", "PE", "PE_LATENCY", "Multipliers", "AdderTree",
    "Accumulator", "PEArray", "HSSDecompressor", "HSSAccelerator", "FlexAccelerator",
    "accelerator_for", "LATENCY", "tile_layout", "weight_beat_layout",
]
