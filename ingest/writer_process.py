"""The ingest writer process: ``python -m ingest.writer_process`` (see :mod:`ingest.writer`)."""

from __future__ import annotations

import os
import sys

from ingest.writer import serve


def main() -> None:
    # The protocol owns stdout: anything else printed goes to stderr.
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, outbox)


if __name__ == "__main__":
    main()
