"""What each process of a benchmarked stack asked of Google Cloud, counted at the client library.

`sitecustomize.py` here does the counting (this folder goes first on the children's
`PYTHONPATH`); `reader` adds the files up.
"""
