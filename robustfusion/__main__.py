from robustfusion.cli import main

raise SystemExit(main())
