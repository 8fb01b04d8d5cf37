"""Component tests run real local programs (ffmpeg, child processes, loopback sockets) against
the suite's code; no emulators, no network beyond 127.0.0.1."""
