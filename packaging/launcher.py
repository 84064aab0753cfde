"""Entry script of the PyInstaller bundle: the same ``main()`` as the ``trading-console`` command."""

from __future__ import annotations

import sys

from console.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
