"""`creations`: a command-line client of the Creations HTTP API (docs/cli.md)."""
