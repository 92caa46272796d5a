import sys

from hybrid_sweep.app import main
from hybrid_sweep.cli import check_output_root, check_overrides, hoist_multirun_flag

check_overrides(sys.argv)
check_output_root(sys.argv)
sys.argv = hoist_multirun_flag(sys.argv)
main()
