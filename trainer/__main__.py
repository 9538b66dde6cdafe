"""``python -m trainer``: the headless trainer's command line."""

from trainer.cli.main import main

raise SystemExit(main())
