"""`loadbay load`: a records file streamed to a Loadbay server in batches, resumable."""
