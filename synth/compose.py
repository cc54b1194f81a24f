"""Distinct modules of a Verilog design, for synthesizing each once and composing the total.

Amaranth writes one Verilog module per submodule *instance* (``top.array.pe_0_0``,
``top.array.pe_0_1``, ...), so an array of N identical PEs arrives as N copies of the same
module bodies under different names. ``distinct_modules`` groups the modules of the
hierarchy under ``top`` into classes of modules that are identical up to their own name and
the names of the modules they instantiate, where those are themselves in the same class
(decided bottom-up). ``Composition.reduced`` is the design with one representative module
per class, every instantiation pointing at the representative: synthesizing it maps each
distinct module once, and ``Composition.expand_stat`` turns the ``stat -json`` of that run
back into one entry per original module, so that the hierarchy (every name, every instance
count) is the one of the original design.

The comparison is textual: attributes (``src``), declarations and statement order must
match exactly, which they do for the modules Amaranth emits from one Python class with the
same parameters; modules that differ only in what a synthesis tool would not see (an
unused port, a different ``src`` line) stay separate classes, which costs time, never
accuracy. Plain text only, no project imports, like the rest of ``synth``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Composition", "distinct_modules", "split_modules"]

# ``module NAME (`` / ``module NAME;`` at the start of a line; NAME plain or escaped
# (an escaped identifier ends at the first white space).
_MODULE = re.compile(r"^module\s+(\\\S+|[A-Za-z_][\w$]*)\s*[(;]", re.MULTILINE)
_END = re.compile(r"^endmodule\b[^\n]*\n?", re.MULTILINE)
# An instantiation as yosys' Verilog backend writes it: ``  TYPE NAME (`` on its own line.
# Names the Verilog backend numbers design-wide (``\$auto$verilog_backend.cc:2355:
# dump_module$38``): the same wire is ``$38`` in one copy and ``$45`` in the next, so the
# comparison renumbers them per module in order of first appearance.
_AUTO = re.compile(r"(\\\$auto\$\S*?\$)(\d+)(?=\s)")
_INSTANCE = re.compile(r"^(\s+)(\\\S+|[A-Za-z_][\w$]*)(\s+)(?=(?:\\\S+|[A-Za-z_][\w$]*)\s*\()",
                       re.MULTILINE)


def _bare(name: str) -> str:
    return name.removeprefix("\\")


@dataclass
class _Module:
    name: str          # as written (escaped names with their backslash)
    head: str          # the attribute lines before ``module``
    header_rest: str   # from after the name to the end of the module
    subs: list = field(default_factory=list)  # instantiated module names, in text order


def split_modules(verilog: str) -> tuple[str, dict[str, _Module]]:
    """``(preamble, {bare name: module})``: the text before the first module's attributes
    and every module with its leading attribute lines and body."""
    starts = list(_MODULE.finditer(verilog))
    if not starts:
        raise ValueError("no module in the Verilog text")
    modules: dict[str, _Module] = {}
    pos = 0
    preamble = None
    for m in starts:
        # the attribute lines directly above ``module`` belong to it
        head_start = m.start()
        while True:
            prev_end = max(pos, verilog.rfind("\n", pos, head_start - 1) + 1)
            line = verilog[prev_end:head_start]
            if head_start > pos and line.lstrip().startswith("(*"):
                head_start = prev_end
            else:
                break
        if preamble is None:
            preamble = verilog[:head_start]
        elif verilog[pos:head_start].strip():
            raise ValueError(f"text between modules before {m.group(1)!r}")
        end = _END.search(verilog, m.end())
        if end is None:
            raise ValueError(f"module {m.group(1)!r} has no endmodule")
        name = m.group(1)
        if _bare(name) in modules:
            raise ValueError(f"module {name!r} defined twice")
        modules[_bare(name)] = _Module(name, verilog[head_start:m.start()],
                                       verilog[m.start(1) + len(name):end.end()])
        pos = end.end()
    if verilog[pos:].strip():
        raise ValueError("text after the last endmodule")
    for mod in modules.values():
        mod.subs = [_bare(i.group(2)) for i in _INSTANCE.finditer(mod.header_rest)
                    if _bare(i.group(2)) in modules]
    return preamble or "", modules


@dataclass
class Composition:
    """Classes of identical modules under ``top`` and the reduced design."""
    top: str
    classes: list[list[str]]       # bare names, each class in text order; first = representative
    rep: dict[str, str]            # bare name -> bare name of its class' representative
    subs: dict[str, dict[str, int]]  # bare name -> {instantiated bare name: count}
    reduced: str                   # Verilog: one module per class

    @property
    def distinct(self) -> int:
        return len(self.classes)

    def instances(self) -> dict[str, int]:
        """How often each module occurs under top (top: 1)."""
        out = dict.fromkeys(self.rep, 0)

        def count(name, mult):
            out[name] += mult
            for sub, n in self.subs[name].items():
                count(sub, mult * n)
        count(self.top, 1)
        return out

    def expand_stat(self, stat: dict) -> dict:
        """A ``stat -json`` dict of the reduced design -> one of the original design: every
        module gets the cells of its representative, and the representative's submodule
        cells are split back to the original submodule names by the text's instantiations.
        Raises ValueError if the synthesized instance counts do not match the text (a tool
        removed an instance), so that the caller can fall back to the flat flow."""
        by_name = {_bare(k): v for k, v in stat["modules"].items()}
        reps = set(self.rep.values())
        modules = {}
        for name, rep in self.rep.items():
            src = by_name.get(rep)
            if src is None:
                raise ValueError(f"representative {rep!r} missing from the synthesized design")
            cells = {}
            grouped: dict[str, int] = {}
            for typ, n in src.get("num_cells_by_type", {}).items():
                if _bare(typ) in reps:
                    grouped[_bare(typ)] = grouped.get(_bare(typ), 0) + n
                else:
                    cells[typ] = n
            text: dict[str, int] = {}
            for sub, n in self.subs[name].items():
                text[self.rep[sub]] = text.get(self.rep[sub], 0) + n
            if text != grouped:
                raise ValueError(f"instances of {name!r} after synthesis {grouped} differ "
                                 f"from the text {text}")
            for sub, n in self.subs[name].items():
                cells[sub] = cells.get(sub, 0) + n
            modules[name] = {**{k: v for k, v in src.items() if k != "num_cells_by_type"},
                             "num_cells_by_type": cells}
        return {**{k: v for k, v in stat.items() if k != "modules"}, "modules": modules}


def _renumber(text: str) -> str:
    seen: dict[str, int] = {}
    return _AUTO.sub(lambda m: f"{m.group(1)}<{seen.setdefault(m.group(0), len(seen))}>", text)


def distinct_modules(verilog: str, top: str) -> Composition:
    """Group the modules under ``top`` (bare or escaped name) into classes of identical
    modules and write the reduced design (see the module docstring)."""
    top = _bare(top)
    preamble, modules = split_modules(verilog)
    if top not in modules:
        raise ValueError(f"top module {top!r} not in the Verilog text")
    keys: dict[str, int] = {}          # canonical text -> class id
    cls: dict[str, int] = {}           # bare name -> class id
    classes: list[list[str]] = []

    def canon(name: str, stack=()) -> int:
        if name in cls:
            return cls[name]
        if name in stack:
            raise ValueError(f"recursive module hierarchy at {name!r}")
        mod = modules[name]
        for sub in mod.subs:
            canon(sub, stack + (name,))

        def placeholder(m):
            sub = _bare(m.group(2))
            if sub not in modules:
                return m.group(0)
            return f"{m.group(1)}\\<class{cls[sub]}>{m.group(3)}"
        key = mod.head + "\0" + _renumber(_INSTANCE.sub(placeholder, mod.header_rest))
        if name == top:            # the top never merges with anything
            key = "\0top\0" + key
        cid = keys.setdefault(key, len(keys))
        if cid == len(classes):
            classes.append([])
        classes[cid].append(name)
        cls[name] = cid
        return cid

    canon(top)
    # the hierarchy under top, in text order
    used = [n for n in modules if n in cls]
    rep_of_class = {cid: members[0] for cid, members in enumerate(classes)}
    rep = {n: rep_of_class[cls[n]] for n in used}
    subs = {}
    for n in used:
        counts: dict[str, int] = {}
        for s in modules[n].subs:
            counts[s] = counts.get(s, 0) + 1
        subs[n] = counts

    def point_at_rep(m):
        sub = _bare(m.group(2))
        if sub not in rep:
            return m.group(0)
        return f"{m.group(1)}{modules[rep[sub]].name}{m.group(3)}"
    parts = [preamble]
    for n in used:
        if rep[n] != n:
            continue
        mod = modules[n]
        parts.append(mod.head + "module " + mod.name + _INSTANCE.sub(point_at_rep, mod.header_rest))
    return Composition(top, classes, rep, subs, "".join(parts))
