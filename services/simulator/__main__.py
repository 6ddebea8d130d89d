"""``python -m services.simulator``: a simulated day of the GHT's establishments sent to the
gateway (``--help`` for the options)."""

import sys

from services.simulator.app import main

if __name__ == "__main__":
    sys.exit(main())
