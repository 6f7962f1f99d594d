from decon.cli import main

raise SystemExit(main())
