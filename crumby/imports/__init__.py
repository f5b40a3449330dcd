"""Other ways in: web-server access logs, from files (``crumby ingest-log``) or syslog.

The data flow is imports -> ingest -> database: this package reads lines
(``sources``, ``syslog``), parses them (``formats``), filters and enriches
them into visit rows (``importer``) and hands the rows to
``crumby.ingest``'s pipeline, which resolves sites, drops lines stored
before (``import_keys``), stitches sessions and inserts. Nothing here
writes a row by itself.
"""

from crumby.imports.formats import Malformed, Request, parse_combined, parse_json
from crumby.imports.importer import LogImporter, StoreFailed, Summary, is_asset

__all__ = [
    "LogImporter",
    "Malformed",
    "Request",
    "StoreFailed",
    "Summary",
    "is_asset",
    "parse_combined",
    "parse_json",
]
