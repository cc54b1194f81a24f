"""report.json and report.md of a run, synth/area.{json,md}, and the summary it prints.

The figures are computed once, in ``gen.results`` (``build_report``); this module writes
them: report.json is ``Report.to_json()``, report.md and synth/area.md are the Jinja2
templates ``gen/templates/*.md.j2``, which only format (the filters below), and
``summary`` is the few lines a run prints. Energies are shown with SI prefixes (``802.1
nJ``), EDP as energy x cycles with a prefix on each (``802.1 nJ x 25.5 kcycles``).
"""
from __future__ import annotations

import math
from pathlib import Path

from .area import COMPOSE_ABOVE_PES
from .emit import write_json
from .render import environment
from .results import Report, build_report
from .simulate import rerun_command

__all__ = ["build_report", "write_report", "markdown", "summary", "si", "energy_text",
           "edp_text"]

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
             (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))


def si(value: float, unit: str, digits: int = 4) -> str:
    """``value`` (in ``unit``) with an SI prefix and ``digits`` significant digits at most:
    ``si(0.0205, "J")`` is ``20.5 mJ``."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else f"{value} {unit}"
    at = next((i for i, (scale, _) in enumerate(_PREFIXES) if abs(value) >= scale),
              len(_PREFIXES) - 1)
    mantissa = value / _PREFIXES[at][0]
    rounded = float(f"{mantissa:.{digits}g}")
    if abs(rounded) >= 1000 and at > 0:             # 999.96 rounds up into the next prefix
        at, rounded = at - 1, float(f"{rounded / 1000:.{digits}g}")
    text = f"{rounded:.{digits}g}"
    if "e" in text:                                 # beyond the prefixes: plain digits
        text = f"{rounded:.{digits}f}"
    return f"{text} {_PREFIXES[at][1]}{unit}"


def energy_text(pj: float | None) -> str:
    """An energy given in pJ, SI-prefixed: ``802.1 nJ``; ``-`` when there is none."""
    return "-" if pj is None else si(pj * 1e-12, "J")


def edp_text(pj_cycles: float | None, cycles: int | None = None) -> str:
    """An energy-delay product given in pJ x cycles: ``20.5 mJ x cycles`` (per cycle of
    delay), prefixed so that it reads without counting digits."""
    return "-" if pj_cycles is None else si(pj_cycles * 1e-12, "J") + " x cycles"


def _num(x, digits: int | None = None) -> str:
    """A number for a table: thousands separators; floats to ``digits`` decimals (default:
    as short as they are, e.g. 1.5, 3); ``-`` for None."""
    if x is None:
        return "-"
    if isinstance(x, float) and digits is None:
        return f"{x:,g}" if abs(x) < 1e15 else f"{x:,.0f}"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}"


def _pct(x, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def _path(p) -> str:
    if not p:
        return "-"
    return (f"`{p['from']}` -> `{p['to']}`: {p['logic_ns']:.2f} ns logic + "
            f"{p['routing_ns']:.2f} ns routing")


def _env():
    env = environment("gen", "templates")
    env.filters.update(num=_num, pct=_pct, energy=energy_text, edp=edp_text, path=_path,
                       cell=lambda x: str(x).replace("|", "\\|"), code=lambda x: f"`{x}`")
    env.globals.update(compose_above=COMPOSE_ABOVE_PES)
    return env


_ENV = None


def markdown(report: Report, area_only: bool = False) -> str:
    """report.md (or synth/area.md) of ``report``."""
    global _ENV
    if _ENV is None:
        _ENV = _env()
    name = "area_report.md.j2" if area_only else "report.md.j2"
    return _ENV.get_template(name).render(r=report).rstrip("\n") + "\n"


def write_report(folder: Path, report: Report, area_only: bool = False) -> None:
    """report.json and report.md into ``folder`` (``area_only``: area.json and area.md,
    the build and its synthesis results only)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = report.to_json()
    if area_only:
        keys = ("pattern", "flexible", "array", "values", "multipliers_per_pe", "lanes",
                "modes", "area", "sparsity_tax")
        data = {k: data[k] for k in keys if k in data}
    write_json(folder / f"{'area' if area_only else 'report'}.json", data)
    (folder / f"{'area' if area_only else 'report'}.md").write_text(markdown(report, area_only))


# -- the lines a run prints -------------------------------------------------------------------
def summary(report: Report, out: Path) -> list[str]:
    """What the run did in a few lines, naming files under the output folder ``out``."""
    r = report
    if len(r.modes) == 1:
        m = r.modes[0]
        lines = [f"pattern {m.pattern}: density {m.density}, speed-up limit "
                 f"{m.speedup_limit:g}x, {m.bits_per_element:.2f} bits/element"]
    else:
        sparsest = min(r.modes, key=lambda m: m.density_value)
        lines = [f"mode set {r.pattern}: {len(r.modes)} modes, density "
                 f"{max(r.modes, key=lambda m: m.density_value).density} .. "
                 f"{sparsest.density}, {r.multipliers_per_pe} multipliers per PE"]
    t = r.testbench
    st = (r.system or {}).get("testbench")
    if st is not None:
        done = [l for l in st["layers"] if "cycles" in l]
        reach = min((l["of_roofline"] for l in done if l["of_roofline"] is not None),
                    default=None)
        lines.append(f"system testbench ({st['simulator']}, tb/system): "
                     f"{'PASS' if st['passed'] else 'FAIL'}, {st['cycles']:,} cycles, "
                     f"{sum(l['dram_bytes'] for l in done):,} DRAM bytes"
                     + ("" if reach is None else f", {reach:.3f} of the roofline at least"))
    if t is None and st is None:
        lines.append("testbench: generated, not simulated (--sim none)")
    elif t is None:
        pass
    else:
        layers = f" of {len(r.layers)} layers" if len(r.layers) > 1 else ""
        lines.append(f"testbench ({t.simulator}): {'PASS' if t.passed else 'FAIL'}, "
                     f"{t.cycles:,} cycles for {t.ideal_cycles:,} steps{layers} "
                     f"(+{r.latency} latency)")
        if t.waves is not None:
            lines.append(f"waveforms: {out / t.waves}")
        if not t.passed:
            lines += [_first_mismatch(t), "re-run traced: "
                      + rerun_command(out / "tb", t.simulator, t.failure["stalls"])]
    lines += _decomposed_lines(r)
    e = r.energy
    lines.append(f"energy {energy_text(e.design.total)} = {e.energy_ratio:.3f}x dense twin; "
                 f"EDP {e.edp_ratio:.3f}x dense twin ({e.table['name']})")
    tx = r.sparsity_tax
    if tx is not None and tx.area_ratio:
        what = "selectors" if len(r.modes) == 1 else "selection"
        limit = (f"{tx.throughput_per_area_vs_dense:.2f}x dense" if len(r.modes) == 1 else
                 f"up to {tx.throughput_per_area_vs_dense:.2f}x dense ({tx.best_mode})")
        lines.append(f"area {r.area.design.nand2_eq:,.0f} NAND2-eq = {tx.area_ratio:.3f}x "
                     f"dense twin; {what} {100 * tx.selector_share:.1f} %; throughput/area "
                     f"{limit}; this run {tx.run_throughput_per_area_vs_dense:.2f}x")
    if tx is not None and tx.fmax_ratio:
        lines.append(f"Fmax {r.area.design.fmax_mhz:.1f} MHz = {tx.fmax_ratio:.3f}x dense twin")
    return lines


def _first_mismatch(t) -> str:
    """The first mismatching tile in a line, or what else stopped the run (a timeout)."""
    f = t.failure["first_mismatch"]
    if not f:
        messages = t.failure["messages"]
        return messages[0] if messages else "no mismatch reported"
    wrong = [f"row {e['row']} col {e['col']} got {e['got']} expected {e['expected']}"
             for e in f["elements"]]
    if f["overflow"] is not None:
        wrong.append(f"overflow flag got {f['overflow']['got']} expected "
                     f"{f['overflow']['expected']}")
    return (f"first mismatching tile {f['tile']}: {wrong[0]}"
            + (f" (+{len(wrong) - 1} more)" if len(wrong) > 1 else "")
            + f"; {t.failure['mismatches']} mismatches in all")


def _decomposed_lines(r: Report) -> list[str]:
    """A line per TASD or pruned layer (three at most): what it kept, the error, the speed;
    an ``auto`` choice that saves nothing says so and names the best candidate that would."""
    lines = []
    for i, l in enumerate(r.layers):
        cycles = f"{l.cycles_or_steps:,} {'cycles' if l.cycles is not None else 'steps'}"
        if l.tasd is not None:
            d = l.tasd
            line = (f"layer {i}: TASD {d.decomposition} (error {100 * d.error:.2f} %), "
                    f"{cycles}, speed-up {l.speedup_vs_dense:.2f}x vs dense")
            if d.saves is False:
                line += "; auto saves nothing over dense"
                if d.best_saving is not None:
                    b = d.best_saving
                    line += (f": the best candidate that does is {b['decomposition']} "
                             f"({b['steps']:,} of {b['dense_steps']:,} steps per row) at "
                             f"{100 * b['error']:.2f} % error, over the budget of "
                             f"{100 * d.max_error:.2f} % (--max-error)")
            lines.append(line)
        elif l.prune is not None:
            lines.append(f"layer {i}: pruned to {l.prune.decomposition} (error "
                         f"{100 * l.prune.error:.2f} %, {l.prune.nonzeros[0]:,} of "
                         f"{l.prune.weights_nonzeros:,} nonzeros kept), {cycles}")
    if len(lines) > 3:
        lines = lines[:3] + [f"... and {len(lines) - 3} more decomposed layers (report.md)"]
    return lines
