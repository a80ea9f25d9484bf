"""The ingest engine: collections, validation, bulk writes, per-record results, jobs.

Pure Python: no HTTP here. Storage is reached through `loadbay.storage`.
"""
