"""Entry point of the bundled converter executable (`lcm-convert`, built by build.spec)."""

from convert.__main__ import main

raise SystemExit(main())
