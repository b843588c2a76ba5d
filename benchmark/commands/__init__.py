"""The commands of ``python -m benchmark``, one module each.

Every module defines ``add_parser(subparsers)``, which adds its command
to the parser of :func:`benchmark.cli.build_parser`, and ``run(args) -> int``,
which carries the command out and returns its exit code. The entry point,
dispatch and exit codes are :mod:`benchmark.cli`'s.
"""
