"""``python -m services.analytics``: run the analytics worker and its PostgreSQL mirror."""

from services.analytics.app import main

main()
