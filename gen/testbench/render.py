"""The templates of a testbench folder (``templates/*.j2``) and how they are rendered.

``StrictUndefined``: a name the caller did not pass is an error, never an empty string in
a Makefile or a testbench. ``trim_blocks``/``lstrip_blocks``: a line holding only a
``{% ... %}`` tag leaves nothing in the output, so the templates indent like their language.
"""
from __future__ import annotations

import re

import jinja2

from synth.tools import is_plain

__all__ = ["environment", "render", "make_word"]


def make_word(path: str) -> str:
    """``path`` as one shell word in a make variable: single-quoted unless plain, and make's
    own ``$`` and ``#`` escaped (a backslash before ``#`` doubled, as make wants)."""
    if is_plain(path):
        return path
    word = "'" + path.replace("'", "'\\''") + "'"
    word = word.replace("$", "$$")
    return re.sub(r"(\\*)#", lambda m: m.group(1) * 2 + "\\#", word)


def environment() -> jinja2.Environment:
    """A Jinja2 environment over this package's templates."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("gen.testbench", "templates"),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["make_word"] = make_word
    return env


_ENV = None


def render(name: str, **values) -> str:
    """Template ``name`` (e.g. ``tb.sv.j2``) rendered with ``values``."""
    global _ENV
    if _ENV is None:
        _ENV = environment()
    return _ENV.get_template(name).render(**values)
