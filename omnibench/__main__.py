import sys

from omnibench.cli import main

sys.exit(main())
