"""``python -m regmap host [--check]``: (re)write the driver's ``host/regmap.py`` from the
RDL, or with ``--check`` exit 1 when the committed file is not what the RDL gives.
``python -m regmap emit DIR [name=value ...]``: write the C header, the Markdown, HTML and
IP-XACT references of a build (default parameters unless given) into ``DIR``."""
from __future__ import annotations

import argparse
import sys

from . import RegmapError, build_model, emit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regmap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    host = sub.add_parser("host", help="write host/regmap.py from the RDL")
    host.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 when host/regmap.py is out of date")
    out = sub.add_parser("emit", help="write the C header and references into DIR")
    out.add_argument("dir")
    out.add_argument("parameters", nargs="*", metavar="name=value",
                     help="a parameter of the RDL (rows=8 ...)")
    args = parser.parse_args(argv)
    try:
        if args.command == "host":
            text = emit.render_host_module()
            if args.check:
                current = emit.HOST_MODULE.read_text(encoding="utf-8") \
                    if emit.HOST_MODULE.exists() else None
                if current != text:
                    print(f"{emit.HOST_MODULE} is out of date: run python -m regmap host",
                          file=sys.stderr)
                    return 1
                return 0
            emit.HOST_MODULE.write_text(text, encoding="utf-8")
            print(emit.HOST_MODULE)
            return 0
        params = {}
        for item in args.parameters:
            name, eq, value = item.partition("=")
            if not eq or not value.strip().lstrip("-").isdigit():
                parser.error(f"expected name=integer, not {item!r}")
            params[name.strip()] = int(value)
        for path in emit.write_all(args.dir, build_model(**params)):
            print(path)
        return 0
    except RegmapError as e:
        print(f"python -m regmap: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
