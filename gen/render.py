"""The one Jinja2 set-up of every emitted text (testbenches, Makefiles, reports).

``StrictUndefined``: a name the caller did not pass is an error, never an empty string in a
Makefile, a testbench or a report. ``trim_blocks``/``lstrip_blocks``: a line holding only a
``{% ... %}`` tag leaves nothing in the output, so templates indent like their language.
Templates live beside the code that fills them, in a package's ``templates/`` folder.
"""
from __future__ import annotations

import jinja2

__all__ = ["environment"]


def environment(package: str, folder: str = "templates") -> jinja2.Environment:
    """A Jinja2 environment over ``package``'s ``folder`` of templates."""
    return jinja2.Environment(loader=jinja2.PackageLoader(package, folder),
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True,
                              autoescape=False)
