"""Safe loading, no code from configs, no secrets in saved files, permissions honoured."""

import ast
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from hybrid_sweep.cli import check_no_secrets
from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.training.checkpoint import load_state
from tests.conftest import ROOT, compose

SOURCE_DIRS = ("hybrid_sweep", "benchmarks", "analysis")
BUILTINS = {"eval", "exec", "compile", "__import__"}
CALLS = {"pickle.load", "pickle.loads", "dill.load", "joblib.load", "pd.read_pickle", "yaml.load",
         "yaml.unsafe_load", "os.system", "os.popen", "OmegaConf.register_new_resolver"}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def code_running_calls(source: str) -> list[str]:
    """Calls that can run code from data: eval/exec, unpickling, unsafe YAML, shells, remote code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        flag = lambda key: isinstance(kw.get(key), ast.Constant) and kw[key].value is True  # noqa: E731
        if name in BUILTINS or name in CALLS:
            found.append(name)
        elif name == "torch.load" and not flag("weights_only"):
            found.append("torch.load without weights_only=True")
        elif name == "np.load" and flag("allow_pickle"):
            found.append("np.load(allow_pickle=True)")
        elif flag("shell") or flag("trust_remote_code"):
            found.append(f"{name}({'shell' if flag('shell') else 'trust_remote_code'}=True)")
    return found


def test_the_scanner_flags_every_pattern():
    snippet = "\n".join(["eval('1')", "exec('x')", "pickle.loads(b)", "yaml.load(s)", "torch.load(p)",
                         "torch.load(p, weights_only=False)", "np.load(p, allow_pickle=True)",
                         "subprocess.run(c, shell=True)", "AutoModel.from_pretrained(p, trust_remote_code=True)",
                         "OmegaConf.register_new_resolver('e', eval)"])
    assert len(code_running_calls(snippet)) == 10
    assert code_running_calls("torch.load(p, weights_only=True)\nyaml.safe_load(s)\njson.loads(s)") == []


def test_no_code_running_calls_in_the_project():
    hits = {str(p.relative_to(ROOT)): code_running_calls(p.read_text())
            for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")}
    assert {path: calls for path, calls in hits.items() if calls} == {}


def test_code_in_a_config_value_is_data(tmp_path):
    flag = tmp_path / "PWNED"
    value = f"__import__('pathlib').Path('{flag}').touch()"
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep", f"results_root={tmp_path / 'r'}",
                          f'sampler.ratio.mono="{value}"'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: sampler.ratio.mono: Value '{value}' of type 'str' could not "
                                               "be converted to Float"]  # the typed config refuses it
    assert not flag.exists() and not (tmp_path / "r" / "runs").exists()


def test_secret_looking_override_is_refused_before_anything_is_written(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep", f"results_root={tmp_path / 'r'}",
                          "+logger.api_key=sk-not-a-real-key"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("error: logger.api_key: looks like a secret;") and len(res.stderr.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_secret_keys_anywhere_in_a_config():
    with pytest.raises(ConfigError, match=r"^data\.hub\.hf_token: looks like a secret"):
        check_no_secrets({"data": {"hub": {"hf_token": "x"}}})
    check_no_secrets({"encoder": {"tokenizer": "x", "max_tokens": 3, "token_budget": 2}})  # not secrets


class _Touch:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_checkpoint_state_that_would_run_code_is_refused(tmp_path):
    flag = tmp_path / "PWNED"
    torch.save({"step": 3, "payload": _Touch(flag)}, tmp_path / "trainer_state.pt")
    with pytest.raises(DataError, match="trainer_state.pt: corrupt checkpoint"):
        load_state(tmp_path)
    assert not flag.exists()


def _tiny_bert(folder: Path) -> None:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16)
    BertModel(cfg).save_pretrained(folder)


def test_model_folder_with_a_code_pickle_is_refused(tmp_path):
    folder, flag = tmp_path / "model", tmp_path / "PWNED"
    _tiny_bert(folder)
    (folder / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": _Touch(flag)}, folder / "pytorch_model.bin")
    cfg = compose(f"encoder.path={folder}", "encoder.format=transformers", "encoder.device=cpu").encoder
    with pytest.raises(ConfigError, match="refusing to unpickle"):
        build_encoder(cfg)
    assert not flag.exists()


def test_model_folder_that_ships_code_is_refused(tmp_path):
    folder, flag = tmp_path / "model", tmp_path / "PWNED"
    folder.mkdir()
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "custom_module.Encoder"}]')
    (folder / "custom_module.py").write_text(f"open({str(flag)!r}, 'w')\n")
    cfg = compose(f"encoder.path={folder}", "encoder.device=cpu").encoder
    with pytest.raises(ConfigError, match="ships its own code, which hybrid_sweep never runs"):
        build_encoder(cfg)
    assert not flag.exists()


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _obey_file_modes():
    """As root (CI), drop the capabilities that let root ignore file modes, before exec; a regular user
    obeys them already. Then a 0555 folder is read-only, as a shared results folder is on a cluster."""
    if os.getuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_read_only_results_root_is_one_line_for_a_regular_user():
    base = Path(tempfile.mkdtemp(prefix="hybrid_sweep_perm_"))
    try:
        root = base / "shared_results"
        root.mkdir()
        root.chmod(0o555)
        for target in (root, root / "study"):
            try:
                res = subprocess.run([sys.executable, "-m", "hybrid_sweep", f"results_root={target}",
                                      "train.max_steps=1"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                     preexec_fn=_obey_file_modes)
            except subprocess.SubprocessError as err:
                pytest.skip(f"cannot drop root's file-mode override here ({err})")
            assert res.returncode == 2, res.stderr[-2000:]
            assert res.stderr.strip() == f"error: results_root: cannot write to {target} (Permission denied)"
            assert list(root.iterdir()) == []
    finally:
        shutil.rmtree(base)
