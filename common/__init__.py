"""Small ideas every package shares: how rankings are fused, which script a text is written in.

A leaf: it imports nothing of the project, so `index/`, `generators/`, `ingest/` and `rag/` may all import it
without breaking the one-way arrows between them.
"""
