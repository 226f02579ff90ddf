"""``python -m microgradient``: the ``microgradient`` command (see :mod:`microgradient.cli`)."""

from microgradient.cli import main

raise SystemExit(main())
