"""``python -m engine`` is the same as the ``tqs`` command."""

from engine.cli import main

raise SystemExit(main())
