"""Benchmarks for mvno-core: block allocation against its SQL floor, number search, reservations.

Run ``python -m bench.run`` from the repository root; see ``bench/README.md``.
"""
