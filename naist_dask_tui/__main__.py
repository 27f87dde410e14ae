from naist_dask_tui.cli import main

raise SystemExit(main())
