"""hss_system's register map: ``hss_system.rdl`` (SystemRDL, the one source), compiled for
a build into a typed model (``build_model``), with its golden register model
(``reference``) and its emitters (``emit``: C header, Markdown, HTML, IP-XACT and the
driver's ``host/regmap.py``). The hardware is ``hdl.regs.Registers(model)``."""
from .model import (ADDRESS_BITS, DATA_BITS, KINDS, RDL_PATH, TOP, WINDOW_BYTES, Enum,
                    EnumMember, Field, Register, RegisterMap, RegmapError, build_model,
                    default_parameters, parameter_names)

__all__ = ["ADDRESS_BITS", "DATA_BITS", "KINDS", "RDL_PATH", "TOP", "WINDOW_BYTES", "Enum",
           "EnumMember", "Field", "Register", "RegisterMap", "RegmapError", "build_model",
           "default_parameters", "parameter_names"]
