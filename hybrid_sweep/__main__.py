import sys

from hybrid_sweep.app import main
from hybrid_sweep.cli import hoist_multirun_flag

sys.argv = hoist_multirun_flag(sys.argv)
main()
