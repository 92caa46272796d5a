import sys

import hybrid_sweep.config  # noqa: F401  (registers the typed config schemas in Hydra's ConfigStore)

from hybrid_sweep.app import main
from hybrid_sweep.cli import cap_local_launcher, check_output_root, check_overrides, hoist_multirun_flag

check_overrides(sys.argv)
check_output_root(sys.argv)
sys.argv = hoist_multirun_flag(cap_local_launcher(sys.argv))
main()
from hybrid_sweep.callbacks import exit_status  # noqa: E402

sys.exit(exit_status())
