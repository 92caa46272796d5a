"""The compose-once sweeper: the launcher gets the configs the sweeper's check composed, every job is
still checked before the first one runs, and nothing composed travels with a pickled launcher."""

import importlib
import pickle

from tests.test_sweeps import QUICK, app


def ComposedOnce(*args, **kwargs):
    # Hydra's plugin scan re-executes hydra_plugins modules; take the class from the module as loaded now
    return importlib.import_module("hydra_plugins.hybrid_sweep_sweeper.compose_once").ComposedOnce(*args, **kwargs)


class CountingLoader:
    """Stands in for Hydra's config loader: composes a fresh object per call and counts the calls."""

    def __init__(self):
        self.calls = []

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls.append(list(sweep_overrides))
        return {"overrides": list(sweep_overrides), "call": len(self.calls)}

    def get_sources(self):
        return ["conf"]


def test_the_launcher_gets_the_config_the_check_composed():
    loader, master = CountingLoader(), object()
    once = ComposedOnce(loader)
    batch = [["train.seed=0"], ["train.seed=1"]]
    checked = [once.load_sweep_config(master, job) for job in batch]  # the sweeper's check
    launched = [once.load_sweep_config(master, job) for job in batch]  # the launcher
    assert [c is l for c, l in zip(checked, launched)] == [True, True]
    assert loader.calls == batch  # composed once each
    again = once.load_sweep_config(master, batch[0])  # a third call (a retry) composes anew
    assert again is not checked[0] and len(loader.calls) == 3
    assert once.get_sources() == ["conf"]  # everything else is the wrapped loader's


def test_held_configs_are_capped_and_not_pickled():
    loader, master = CountingLoader(), object()
    once = ComposedOnce(loader, keep_at_most=2)
    jobs = [[f"train.seed={i}"] for i in range(4)]
    for job in jobs:
        once.load_sweep_config(master, job)
    assert len(once._composed) == 2  # beyond the cap, a job is composed again at launch
    for job in jobs:
        once.load_sweep_config(master, job)
    assert len(loader.calls) == 6 and once._composed == {}  # nothing held after the launch
    once = ComposedOnce(loader)
    once.load_sweep_config(master, jobs[0])
    copy = pickle.loads(pickle.dumps(once))
    assert copy._composed == {} and len(once._composed) == 1
    assert copy.load_sweep_config(master, jobs[1])["overrides"] == jobs[1]


def test_a_job_that_cannot_be_composed_stops_the_sweep_before_any_run(tmp_path):
    res = app("-m", "encoder=tiny,no_such_encoder", *QUICK, root=tmp_path)
    assert res.returncode != 0 and "no_such_encoder" in res.log
    assert not (tmp_path / "runs").exists()  # the first job did not run either
