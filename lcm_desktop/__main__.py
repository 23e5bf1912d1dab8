from lcm_desktop.cli import main

raise SystemExit(main())
