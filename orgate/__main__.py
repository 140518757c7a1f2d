from orgate.cli import main

raise SystemExit(main())
