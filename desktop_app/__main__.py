"""``python -m desktop_app``: start the desktop app."""

import sys

from desktop_app.main import main

sys.exit(main())
