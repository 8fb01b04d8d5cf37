"""The library every function of the suite imports (settings, ledger, store, auth, API)."""
