"""Feed ingestion: read suspect URLs from feeds, normalise, de-duplicate, account for every line.

``ingest_sources`` is the stage's entry point (``tocsin ingest`` and ``tocsin
run`` call it); ``REASONS`` the fixed vocabulary of why a record is rejected.
"""

from ingest.detect import FEED_NAMES, FORMATS, detect
from ingest.records import REASONS
from ingest.run import IngestReport, SourceReport, ingest_sources, ingest_urls

__all__ = [
    "FEED_NAMES",
    "FORMATS",
    "REASONS",
    "IngestReport",
    "SourceReport",
    "detect",
    "ingest_sources",
    "ingest_urls",
]
