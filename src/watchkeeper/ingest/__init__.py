"""Ingestion: read, validate, quarantine, dedupe, append."""

from watchkeeper.ingest.pipeline import IngestResult, ingest
from watchkeeper.ingest.readers import Source, open_source
from watchkeeper.ingest.validate import REASONS

__all__ = ["REASONS", "IngestResult", "Source", "ingest", "open_source"]
