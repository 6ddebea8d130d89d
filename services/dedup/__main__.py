"""``python -m services.dedup``: run the deduplication worker."""

from services.common.runner import run_service
from services.dedup.service import start

if __name__ == "__main__":
    run_service("dedup", start)
