"""The request kernel: configuration, database, the request boundary, errors, pagination, clock, ids.

Nothing here imports a domain package; domains import the kernel.
"""
