"""The bad-input catalogue: inputs a user can get wrong, each run through a real CLI, with the one line it
must answer (``error: <field or file>: <first words>``, exit 2) and nothing written or marked complete.

``ROWS`` is the catalogue (the bad files come from tests/bad_input_setups.py); ``render_table()`` is the
table in docs/reliability.md ("Bad inputs"), so the document and the test cannot drift: regenerate it with
``python -m tests.bad_input_catalogue --doc``. tests/bad_input_driver.py runs the rows.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.bad_input_setups import (ROOT, a_file, beir, beir_empty_corpus, beir_empty_qrels, beir_id_with_space,
                                    beir_malformed, beir_not_utf8, beir_queries_not_utf8, corrupt_run_config,
                                    earlier_results, empty_model_folder, folder, lareqa_lengths, lareqa_malformed,
                                    lareqa_no_answers, lareqa_without_breaks, model_folder_with_code,
                                    model_folder_with_pickle, root_with_a_runs_folder, train_jsonl,
                                    train_jsonl_empty, train_jsonl_empty_lang, train_jsonl_english,
                                    train_jsonl_malformed, train_jsonl_not_utf8, train_jsonl_without_group,
                                    truncated_metrics)

# Where each CLI writes, added to every row's argv (the doc table leaves it out).
OUTPUT_ARG = {"hybrid_sweep": "results_root={tmp}/root", "hybrid_sweep.train": "output_dir={tmp}/out",
              "hybrid_sweep.evaluate": "output_dir={tmp}/out"}
# What a CLI may leave behind although it refused the input: Hydra's own log folder, which
# `python -m hybrid_sweep` creates under the results root before any of our code runs (cli.py's
# check_output_root checks the root can be created first); lock files of a cache it only read.
TOLERATED = ("root/hydra/*", "cache/*.lock")


@dataclass(frozen=True)
class Row:
    """One bad input. ``names`` is the field (dotted key) or file (``file:line`` for data) the message
    starts with, ``words`` what follows it; ``{tmp}`` stands for the row's own folder."""

    id: str
    input: str  # what is wrong, for the table
    cli: str  # the module run with `python -m`
    args: tuple[str, ...]
    names: str
    words: str
    setup: Callable[[Path], None] | None = None
    writes: tuple[str, ...] = ()  # files the CLI may write although it refused (glob patterns under {tmp})
    xfail: str | None = None  # a known gap: the row fails today (strict: it fails loudly once fixed)
    subprocess: bool = False  # also run as its own process, to show the in-process driver agrees

    def argv(self, tmp: Path) -> list[str]:
        out = OUTPUT_ARG.get(self.cli)
        extra = [out] if out and not any(a.startswith(out.split("=")[0] + "=") for a in self.args) else []
        return [a.replace("{tmp}", str(tmp)) for a in (*self.args, *extra)]

    def expected(self, tmp: Path) -> str:
        """A regular expression the one line must start with (``{run}`` stands for any run id)."""
        line = re.escape(f"error: {self.names}: {self.words}".replace("{tmp}", str(tmp)))
        return line.replace(re.escape("{run}"), "[0-9a-f]+")


# --- the catalogue ----------------------------------------------------------------------------------------
MAIN, TRAIN, EVAL, COLLECT, EVAL_ROOT = ("hybrid_sweep", "hybrid_sweep.train", "hybrid_sweep.evaluate",
                                         "hybrid_sweep.collect", "hybrid_sweep.evaluate_root")
JSONL_ARGS = ("data=jsonl", "data.sources.0.path={tmp}/train.jsonl", "data.cache_dir={tmp}/cache")
BEIR = ("eval=beir", "eval.path={tmp}/beir")
XQUAD = ("eval=xquad_r", "paths.data_root={tmp}/data", "eval.languages=[en]")
# A data error found in a sweep's run: the run is recorded FAILED (by design, so a rerun retries it).
RUN_FAILED = ("root/runs/store.json", "root/runs/*/.lock", "root/runs/*/FAILED", "root/runs/*/config.yaml",
              "root/runs/*/error.txt", "root/runs/*/evals.json", "root/runs/*/stages.json")
# collect marks a run whose artefacts do not verify FAILED and writes tables that say so.
COLLECT_MARKS = ("root/runs.parquet", "root/runs.csv", "root/results.parquet", "root/per_query.parquet",
                 "root/runs/*/FAILED", "root/runs/*/artefacts.json", "root/runs/*/evals.json", "root/.collect.lock",
                 "root/runs/*/.lock", "root/runs/*/DONE.*")

ROWS: list[Row] = [
    # training settings
    Row("lr-negative", "negative learning rate", MAIN, ("train.lr=-1",), "train.lr", "must be > 0, got -1.0",
        subprocess=True),
    Row("lr-zero", "zero learning rate", TRAIN, ("train.lr=0",), "train.lr", "must be > 0, got 0.0"),
    Row("max-steps-zero", "no training steps while training is on (it used to mark the run DONE)", MAIN,
        ("train.max_steps=0",), "train.max_steps", "must be >= 1 when training is enabled"),
    Row("max-steps-negative", "negative training steps", TRAIN, ("train.max_steps=-5",), "train.max_steps",
        "must be >= 0, got -5"),
    Row("temperature-negative", "negative temperature", MAIN, ("train.temperature=-1",), "train.temperature",
        "must be > 0, got -1.0"),
    Row("warmup-negative", "negative warm-up", MAIN, ("train.warmup=-3",), "train.warmup", "must be >= 0, got -3.0"),
    Row("dropout-above-1", "dropout of 1 or more", TRAIN, ("train.dropout=1.5",), "train.dropout",
        "must be in [0, 1), got 1.5"),
    Row("grad-cache-chunk-zero", "GradCache chunk of 0", MAIN, ("train.grad_cache.chunk_size=0",),
        "train.grad_cache.chunk_size", "must be a positive integer, got 0"),
    Row("batch-size-text", "a value of the wrong type", MAIN, ("train.batch_size=abc",), "train.batch_size",
        "Value 'abc' of type 'str' could not be converted to Integer"),
    Row("in-a-sweep", "a bad value in a sweep (no run starts)", MAIN, ("-m", "train.seed=0,1", "train.lr=-1"),
        "train.lr", "must be > 0, got -1.0"),
    Row("plan-maybe", "a yes/no setting given `maybe`", MAIN, ("plan=maybe",), "plan",
        "Value 'maybe' is not a valid bool"),
    # sampler
    Row("ratio-expression", "code in a config value (stays data)", MAIN, ("sampler.ratio.mono=\"__import__('os')\"",),
        "sampler.ratio.mono", "Value '__import__('os')' of type 'str' could not be converted to Float"),
    Row("ratio-sum", "sampler ratios that do not sum to 1", MAIN, ("sampler.ratio.mono=0.9",), "sampler.ratio",
        "mono/cross/mixed must be >= 0 and sum to 1"),
    Row("ratio-negative", "a negative sampler ratio", TRAIN, ("sampler.ratio.mono=-0.5", "sampler.ratio.cross=1.5"),
        "sampler.ratio.mono", "must be in [0, 1], got -0.5"),
    Row("ratio-unknown-mode", "a misspelt batch mode", TRAIN, ("+sampler.ratio.crosss=0.5",), "sampler.ratio.crosss",
        "unknown key (declared: mono, cross, mixed)"),
    Row("pair-kind-unknown", "an unknown choice", MAIN, ("sampler.pair_kind=sideways",), "sampler.pair_kind",
        "unknown pair_kind 'sideways'; one of ordered, unordered"),
    Row("n-pairs-too-many", "more language pairs than the data has", TRAIN, ("sampler.n_pairs=1000",),
        "sampler.n_pairs", "must be in 1..30 (ordered pairs of 6 languages), got 1000"),
    Row("n-pairs-zero", "zero language pairs", MAIN, ("sampler.n_pairs=0",), "sampler.n_pairs",
        "must be a positive integer, got 0"),
    Row("batch-larger-than-groups", "batch size larger than a language's groups", TRAIN, (*JSONL_ARGS,
        "train.batch_size=11"), "train.batch_size", "11 is larger than the 9 groups of {tmp}/train.jsonl in language",
        setup=train_jsonl, writes=("cache/*",)),  # the file was read into the conversion cache: fine
    Row("sampler-weights-length", "sampler weights of the wrong length", TRAIN, ("sampler.weights=[1,2]",),
        "sampler.weights", "2 weights for 1 corpora"),
    # training data settings
    Row("holdout-above-1", "held-out fraction outside (0, 1)", TRAIN, (*JSONL_ARGS, "data.dev.holdout=1.5"),
        "data.dev.holdout", "must be in (0, 1), got 1.5", setup=train_jsonl),
    Row("languages-empty", "empty training-language set", TRAIN, ("data.languages=[]",), "data.languages",
        "empty training-language set"),
    Row("languages-unknown", "training language the data lacks", TRAIN, ("data.languages=[xx]",),
        "data.languages", "synthetic has no language 'xx'; available:"),
    Row("languages-unknown-sweep", "training language no source can hold (sweep CLI: refused before the run starts)",
        MAIN, ("data.languages=[xx]",), "data.languages", "synthetic has no language 'xx'; available:",
        subprocess=True),
    Row("languages-unknown-file", "training language a file source lacks (sweep CLI: found once the file is read)",
        MAIN, ("data=jsonl", "data.sources.0.path={tmp}/train.jsonl", "data.languages=[xx]"), "run {run}: data.languages",
        "{tmp}/train.jsonl has no language 'xx'; available:", setup=train_jsonl, writes=RUN_FAILED),
    Row("budget-foreign", "budget for a non-training language", TRAIN, ("data.languages=[qla]", "+data.budgets.xx=5"),
        "data.budgets", "budget for 'xx', which is not a training language"),
    Row("synthetic-script", "unknown synthetic script", EVAL, ("synthetic.languages.0.script=klingon",),
        "synthetic.languages", "qla: unknown script 'klingon'"),
    # encoders
    Row("encoder-batch-zero", "encoding batch of 0", MAIN, ("encoder.batch_size=0",), "encoder.batch_size",
        "must be a positive integer, got 0"),
    Row("encoder-layers-zero", "zero layers of mE5 (refused before the model is built)", MAIN,
        ("encoder=me5_small_q4", "encoder.layers=0"), "encoder.layers", "must be a positive integer, got 0"),
    Row("encoder-layers-13", "more layers than mE5 small has", EVAL, ("encoder=me5_small_q4", "encoder.layers=13"),
        "encoder.layers", "must be in 1..12, got 13"),
    Row("encoder-layers-tiny", "a key the chosen preset lacks (`encoder=tiny` has no `layers`)", MAIN,
        ("encoder.layers=0",), "encoder.layers",
        "the encoder preset 'tiny' has no such setting (presets that have it: me5_small_q4)"),
    Row("tiny-layers-zero", "tiny encoder with 0 layers", TRAIN, ("encoder.tiny.layers=0",), "encoder.tiny.layers",
        "must be a positive integer, got 0"),
    Row("max-length-million", "max_length no model has", MAIN, ("encoder.max_length=1000000",), "encoder.max_length",
        "must be in [1, 8192], got 1000000"),
    Row("max-length-million-mE5", "max_length no model has (mE5)", EVAL,
        ("encoder=me5_small_q4", "encoder.max_length=1000000"), "encoder.max_length", "must be in [1, 8192]"),
    Row("device-unknown", "an unknown device", EVAL, ("encoder.device=tpu",), "encoder.device",
        "unknown device 'tpu'; one of auto, cpu, mps, cuda, cuda:N"),
    Row("encoder-unknown", "unknown encoder preset", MAIN, ("encoder=bert_large",), "encoder",
        "unknown option 'bert_large'; available:", subprocess=True),
    Row("encoder-path-empty", "encoder path without a model", EVAL, ("encoder.path={tmp}/model",), "encoder.path",
        "no model at {tmp}/model (expected modules.json or config.json)", setup=empty_model_folder),
    Row("encoder-path-empty-sweep", "encoder path without a model (a run of the sweep CLI; it used to fail in the run)",
        MAIN, ("encoder.path={tmp}/model",), "encoder.path", "no model at {tmp}/model (expected modules.json",
        setup=empty_model_folder),
    Row("encoder-path-code", "model folder that ships its own code", EVAL, ("encoder.path={tmp}/model",),
        "encoder.path", "{tmp}/model: the model ships its own code, which hybrid_sweep never runs",
        setup=model_folder_with_code),
    Row("encoder-path-pickle", "model folder whose weights are a pickle", EVAL,
        ("encoder.path={tmp}/model", "encoder.format=transformers"), "encoder.path",
        "{tmp}/model: refusing to unpickle",
        setup=model_folder_with_pickle),
    Row("encoder-hub-offline", "a hub model that is not cached, offline", EVAL,
        ("encoder=labse", "encoder.path=nobody-org/not-a-model"), "encoder.path",
        "cannot load 'nobody-org/not-a-model' (HF_HUB_OFFLINE=1)"),
    # composing the config
    Row("sweep-unknown", "unknown sweep", MAIN, ("-m", "+sweep=nope"), "sweep", "unknown option 'nope'; available:"),
    Row("sampler-twice", "one key given twice", MAIN, ("sampler=mono", "sampler=cross"), "sampler",
        "given twice ('mono' and 'cross'); keep one"),
    Row("key-typo", "a key no config declares", MAIN, ("sampler.temprature=2",), "sampler.temprature",
        "unknown key (declared:"),
    Row("key-typo-plus", "an added key no config declares", TRAIN, ("+train.lrr=1",), "train.lrr",
        "unknown key (declared:"),
    Row("eval-key-typo", "a misspelt key of an evaluation entry", MAIN, ("+evals.synthetic.revison=abc",),
        "evals.synthetic.revison", "unknown key (declared:"),
    Row("eval-format-typo", "a misspelt evaluation format", MAIN,
        ("+eval@evals.toy=beir", "evals.toy.path={tmp}", "evals.toy.format=bier"), "evals.toy.format",
        "unknown format 'bier'; one of auto, beir, mteb, trec"),
    Row("embedding-store-maybe", "a yes/no setting given `maybe`", MAIN,
        ("+eval@evals.toy=beir", "evals.toy.path={tmp}", "evals.toy.embedding_store=maybe"),
        "evals.toy.embedding_store", "Value 'maybe' is not a valid bool"),
    Row("embedding-store-synthetic", "a key the chosen evaluation preset lacks", MAIN,
        ("evals.synthetic.embedding_store=true",), "evals.synthetic.embedding_store",
        "the eval preset 'synthetic' has no such setting (presets that have it: beir,"),
    Row("launcher-typo", "unknown Hydra launcher", MAIN, ("-m", "hydra/launcher=slurmm"), "hydra/launcher",
        "unknown option 'slurmm'; available:"),
    Row("logger-mode-bogus", "unknown W&B mode", MAIN, ("logger=wandb", "logger.mode=bogus"), "logger.mode",
        "unknown mode 'bogus'; one of offline, online, disabled"),
    Row("logger-mode-no-wandb", "a W&B setting without `logger=wandb`", MAIN, ("logger.mode=bogus",), "logger.mode",
        "the logger preset 'none' has no such setting (presets that have it: wandb)"),
    Row("secret-key", "secret-looking config key", MAIN, ("+logger.api_key=sk-not-a-real-key",), "logger.api_key",
        "looks like a secret"),
    Row("secret-key-train", "secret-looking config key", TRAIN, ("+data.hf_token=hf_x",), "data.hf_token",
        "looks like a secret"),
    Row("results-root-file", "a results root that cannot be created", MAIN, ("results_root={tmp}/afile/root",),
        "results_root", "cannot write to {tmp}/afile/root", setup=a_file),
    Row("output-dir-file", "an output folder that cannot be created", TRAIN, ("output_dir={tmp}/afile/out",),
        "output_dir", "cannot write to {tmp}/afile/out", setup=a_file),
    Row("output-dir-holds-results", "an output folder that holds results", EVAL, (), "output_dir",
        "{tmp}/out already holds results; pass overwrite=true", setup=earlier_results),
    # evaluation settings
    Row("eval-language-missing", "evaluation language the benchmark lacks", EVAL, ("eval.languages=[xx]",),
        "eval.languages", "synthetic benchmark has no language 'xx'; available:"),
    Row("eval-articles-zero", "`eval.subset.articles` of 0", EVAL, ("eval.subset.articles=0",),
        "eval.subset.articles", "must be a positive integer, got 0"),
    Row("eval-setting-unknown", "unknown evaluation setting", EVAL, ("eval.settings=[diagonal]",), "eval.settings",
        "unknown setting 'diagonal'; one of mono, cross, multi"),
    Row("eval-run-depth", "negative run depth", EVAL, ("eval.run_depth=-3",), "eval.run_depth",
        "must be a positive integer, got -3"),
    Row("eval-lang-traversal", "a language that climbs out of the output folder", EVAL, (*BEIR, "eval.lang=../../x"),
        "eval.lang", "'../../x' is not a plain name", setup=beir),
    Row("eval-lang-traversal-sweep", "a language that climbs out of the results root", MAIN,
        ("+eval@evals.toy=beir", "evals.toy.path={tmp}/beir", "evals.toy.lang=../../x"), "evals.toy.lang",
        "'../../x' is not a plain name", setup=beir),
    Row("mteb-no-task", "an MTEB evaluation that names no task", EVAL, ("eval=mteb",), "eval.tasks",
        "name at least one MTEB task"),
    Row("flores-no-data", "a data root without FLORES", EVAL, ("eval=flores", "paths.data_root={tmp}/data"),
        "{tmp}/data/sib200", "FLORES folder not found (set paths.data_root or $HYBRID_SWEEP_DATA"),
    Row("flores-language", "a FLORES language code that does not exist", EVAL,
        ("eval=flores", "eval.languages=[xxx_Xxxx]", "paths.data_root={tmp}/data"), "eval.languages",
        "no FLORES folder 'xxx_Xxxx' under {tmp}/data/sib200; codes look like eng_Latn",
        setup=lambda t: (t / "data" / "sib200").mkdir(parents=True)),
    # data files
    Row("train-not-utf8", "bytes that are not UTF-8 in a JSONL training file", TRAIN, JSONL_ARGS,
        "{tmp}/train.jsonl:6", "not UTF-8 text (byte 0xff", setup=train_jsonl_not_utf8, subprocess=True),
    Row("train-malformed", "malformed JSONL line", TRAIN, JSONL_ARGS, "{tmp}/train.jsonl:3", "malformed JSON",
        setup=train_jsonl_malformed),
    Row("train-malformed-sweep", "malformed JSONL line (a single run of the sweep CLI)", MAIN, JSONL_ARGS,
        "run {run}: {tmp}/train.jsonl:3", "malformed JSON", setup=train_jsonl_malformed, writes=RUN_FAILED),
    Row("train-without-group", "training file without a column", TRAIN, JSONL_ARGS, "{tmp}/train.jsonl",
        "missing column 'group' (have:", setup=train_jsonl_without_group),
    Row("train-empty-field", "training row with an empty field", TRAIN, JSONL_ARGS, "{tmp}/train.jsonl",
        "row 0: missing field 'lang'", setup=train_jsonl_empty_lang),
    Row("train-unknown-language", "unknown language code in a training row", TRAIN, JSONL_ARGS,
        "{tmp}/train.jsonl field 'lang'", "unknown language code 'english'", setup=train_jsonl_english),
    Row("train-empty", "empty training file", TRAIN, JSONL_ARGS, "{tmp}/train.jsonl", "no training rows",
        setup=train_jsonl_empty),
    Row("train-missing", "training file that does not exist", TRAIN, JSONL_ARGS, "data.sources.0.path",
        "{tmp}/train.jsonl does not exist"),
    Row("train-path-unset", "a required value unset", TRAIN, ("data=jsonl",), "data.sources.0.path",
        "required and not set"),
    Row("hub-data-offline", "a hub dataset that is not cached, offline", TRAIN,
        ("data=swim_ir", "data.cache_dir={tmp}/cache"), "nthakur/swim-ir-cross-lingual [de]", "cannot load ("),
    Row("beir-not-utf8", "bytes that are not UTF-8 in a BEIR corpus", EVAL, BEIR, "{tmp}/beir/corpus.jsonl:2",
        "not UTF-8 text (byte 0xfc", setup=beir_not_utf8, subprocess=True),
    Row("beir-queries-not-utf8", "bytes that are not UTF-8 in BEIR queries", EVAL, BEIR, "{tmp}/beir/queries.jsonl:2",
        "not UTF-8 text (byte 0xff", setup=beir_queries_not_utf8),
    Row("beir-empty-corpus", "empty `corpus.jsonl`", EVAL, BEIR, "{tmp}/beir/corpus.jsonl", "no documents",
        setup=beir_empty_corpus),
    Row("beir-empty-qrels", "a split without judgements", EVAL, BEIR, "{tmp}/beir/qrels/test.tsv", "no judgements",
        setup=beir_empty_qrels),
    Row("beir-malformed", "malformed JSON line in a BEIR corpus", EVAL, BEIR, "{tmp}/beir/corpus.jsonl:3",
        "malformed JSON", setup=beir_malformed),
    Row("beir-id-space", "a document id with whitespace", EVAL, BEIR, "{tmp}/beir/corpus.jsonl:2",
        "id 'doc 1' is empty or holds whitespace", setup=beir_id_with_space),
    Row("beir-id-space-sweep", "a document id with whitespace (a single run of the sweep CLI)", MAIN,
        ("~eval@evals.synthetic", "+eval@evals.toy=beir", "evals.toy.path={tmp}/beir", "train.enabled=false"),
        "run {run}: {tmp}/beir/corpus.jsonl:2",
        "id 'doc 1' is empty or holds whitespace", setup=beir_id_with_space, writes=RUN_FAILED),
    Row("beir-missing", "a BEIR folder that does not exist", EVAL, BEIR, "eval.path", "{tmp}/beir does not exist"),
    Row("lareqa-missing", "a LAReQA file missing from the data root", EVAL,
        ("eval=xquad_r", "paths.data_root={tmp}/nowhere", "eval.languages=[en]"),
        "{tmp}/nowhere/lareqa/xquad-r/en.json", "file not found (data root from paths.data_root"),
    Row("lareqa-malformed", "malformed LAReQA JSON", EVAL, XQUAD, "{tmp}/data/lareqa/xquad-r/en.json",
        "malformed JSON", setup=lareqa_malformed),
    Row("lareqa-no-breaks", "LAReQA file without `sentence_breaks`", EVAL, XQUAD, "{tmp}/data/lareqa/xquad-r/en.json",
        "missing field 'sentence_breaks' in data[0].paragraphs[0]", setup=lareqa_without_breaks),
    Row("lareqa-lengths", "`sentences` and `sentence_breaks` of different lengths", EVAL, XQUAD,
        "{tmp}/data/lareqa/xquad-r/en.json", "data[0].paragraphs[0]: 'sentences' has 2 items, 'sentence_breaks' 1",
        setup=lareqa_lengths),
    Row("lareqa-no-answers", "question with empty `answers`", EVAL, XQUAD, "{tmp}/data/lareqa/xquad-r/en.json",
        "data[0].paragraphs[0].qas[0]: 'answers' is empty", setup=lareqa_no_answers),
    # results roots
    Row("collect-truncated", "a finished run's `metrics.parquet` truncated", COLLECT, ("{tmp}/root",),
        "{tmp}/root", "1 finished run(s) did not verify, left out of the tables: {tmp}/root/runs/",
        setup=truncated_metrics, subprocess=True, writes=COLLECT_MARKS),
    Row("collect-missing", "collect on a folder that does not exist", COLLECT, ("{tmp}/nope",), "{tmp}/nope",
        "no such results root"),
    Row("collect-not-a-root", "collect on a folder that is not a results root", COLLECT, ("{tmp}/root",),
        "{tmp}/root", "not a results root (no runs/ folder)", setup=folder),
    Row("collect-bad-config", "a run whose `config.yaml` is not YAML", COLLECT, ("{tmp}/root",),
        "{tmp}/root/runs/{run}/config.yaml:2", "not valid YAML", setup=corrupt_run_config),
    Row("evaluate-root-no-entry", "`evaluate_root` with no entry named", EVAL_ROOT, ("{tmp}/root",), "evals",
        "name an evaluation entry (+eval@evals.NAME=PRESET) or a --baseline", setup=root_with_a_runs_folder,
        subprocess=True),
    Row("evaluate-root-usage", "`evaluate_root` without a results root", EVAL_ROOT, ("+eval@evals.x=flores",),
        "results_root", "usage:"),
    Row("evaluate-root-not-a-root", "`evaluate_root` on a folder without runs", EVAL_ROOT,
        ("{tmp}/root", "+eval@evals.flores=flores"), "results_root", "{tmp}/root: no runs/ folder here", setup=folder),
    Row("evaluate-root-unknown-preset", "`evaluate_root` with an unknown evaluation preset", EVAL_ROOT,
        ("{tmp}/root", "+eval@evals.x=nope"), "eval", "unknown option 'nope'; available:",
        setup=root_with_a_runs_folder),
    Row("evaluate-root-baseline-empty", "`evaluate_root --baseline` without overrides", EVAL_ROOT,
        ("{tmp}/root", "--baseline"), "--baseline", "needs the baseline's overrides", setup=root_with_a_runs_folder),
    Row("evaluate-root-baseline-typo", "`evaluate_root` with a bad baseline", EVAL_ROOT,
        ("{tmp}/root", "--baseline", "encoder=me5_smal"), "encoder", "unknown option 'me5_smal'; available:",
        setup=root_with_a_runs_folder),
]


# --- the table in docs/reliability.md ---------------------------------------------------------------------
def _shown(text: str) -> str:
    return text.replace("{tmp}/", "").replace("{tmp}", "<folder>").replace("|", "\\|")


def render_table() -> str:
    """The catalogue as the Markdown table of docs/reliability.md's "Bad inputs" section."""
    lines = ["| input | command | message (after `error: `) | row |", "|---|---|---|---|"]
    for r in ROWS:
        cmd = " ".join(["python -m", r.cli, *r.args])
        message = _shown(f"{r.names}: {r.words}".replace("{run}", "<run>")) + " ..."
        gap = " — known gap: " + r.xfail.split(":")[0] if r.xfail else ""
        lines.append(f"| {r.input} | `{_shown(cmd)}` | `{message}`{gap} | `{r.id}` |")
    return "\n".join(lines) + "\n"


DOC, BEGIN, END = ROOT / "docs" / "reliability.md", "<!-- catalogue: begin -->\n", "<!-- catalogue: end -->"


def doc_table(text: str) -> str:
    """The generated part of the document (between the markers)."""
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)]


def write_doc() -> None:
    """Replace the generated table in docs/reliability.md (``python -m tests.bad_input_catalogue --doc``)."""
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + render_table() + text[end:])


if __name__ == "__main__" and sys.argv[1:] == ["--doc"]:
    write_doc()
