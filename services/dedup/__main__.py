"""``python -m services.dedup``: run the deduplication worker."""

from services.dedup.app import main

main()
