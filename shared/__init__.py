"""The library every function of the suite imports, one package per capability.

    core       settings, errors, logs, Google clients, event decoding, the call policy
    store      the document-store port, its Firestore adapter, guarded writes, paths, indexes
    creations  a creation: its document, its typed request, its state machine, claims on it
    money      the token ledger, prices, refunds
    intake     what `submit` does: auth, request parsing, submissions, reels, cancel/delete, API
    work       what happens after submit: the job queue, the worker, the sweeper, dead letters
    media      media storage, probing, ffmpeg, the providers (offline, google-genai), Reel Maker
    wiring     builds each function's collaborators from its settings

Each package's `__init__` names its public API. The functions' entry points
(`functions/<name>/main.py`) decode their event (`shared.core.events`, `shared.work.jobs`),
build their collaborators once (`shared.wiring`) and make one call.
"""
