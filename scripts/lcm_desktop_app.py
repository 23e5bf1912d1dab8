"""Entry point of the bundled app (build.spec): the same as `python -m lcm_desktop`."""

from lcm_desktop.cli import main

raise SystemExit(main())
