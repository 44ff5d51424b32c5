"""``python -m stablenet …`` is the ``stablenet`` command (``torchrun … -m stablenet train CONFIG``)."""

from .app.cli import main

raise SystemExit(main())
