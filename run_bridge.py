#!/usr/bin/env python3
"""Start the Jukebox bridge from a checkout: `python run_bridge.py --help` (same as `jukebox-bridge`)."""

import sys

from bridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
