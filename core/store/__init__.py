"""The content-addressed cache: keys, atomic files, entries with their point logs and step journals, and the
housekeeping that sizes and prunes it. It stores what it is given and knows nothing of what is computed.
"""

from core.store.files import atomic_write_bytes, ensure_folder, files_state
from core.store.housekeeping import apply_cache_cap, cache_size, list_items, parse_age, parse_size, prune
from core.store.journal import DEFAULT_MAX_BYTES, JOURNAL_FILE, NO_JOURNAL, Journal, JournalScope, NoJournal
from core.store.keys import content_hash, file_hash, to_plain
from core.store.store import Entry, Store

__all__ = [
    "apply_cache_cap",
    "atomic_write_bytes",
    "cache_size",
    "content_hash",
    "DEFAULT_MAX_BYTES",
    "ensure_folder",
    "Entry",
    "file_hash",
    "files_state",
    "Journal",
    "JOURNAL_FILE",
    "JournalScope",
    "list_items",
    "NO_JOURNAL",
    "NoJournal",
    "parse_age",
    "parse_size",
    "prune",
    "Store",
    "to_plain",
]
