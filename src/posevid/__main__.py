import sys

from posevid.cli import main

sys.exit(main())
