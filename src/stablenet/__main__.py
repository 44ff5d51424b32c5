"""``python -m stablenet …`` is the ``stablenet`` command (``torchrun … -m stablenet train CONFIG``)."""

from .cli import main

raise SystemExit(main())
