"""The templates of a testbench folder (``templates/*.j2``) and how they are rendered:
with ``gen.render``'s set-up (``StrictUndefined``, ``trim_blocks``, ``lstrip_blocks``) and a
filter that quotes paths for make."""
from __future__ import annotations

import re

import jinja2

from synth.tools import is_plain

from ..render import environment as templates

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
    """``gen.render``'s environment over this package's templates, with ``make_word``."""
    env = templates("gen.testbench")
    env.filters["make_word"] = make_word
    return env


_ENV = None


def render(name: str, **values) -> str:
    """Template ``name`` (e.g. ``tb.sv.j2``) rendered with ``values``."""
    global _ENV
    if _ENV is None:
        _ENV = environment()
    return _ENV.get_template(name).render(**values)
