import sys

from xscreen.cli import main

sys.exit(main())
