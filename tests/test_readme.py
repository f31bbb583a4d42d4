"""The README's commands, spec files, links and YAML example stay true to the code."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from analysis.sequential_design import validate_sequential
from monetk.callbacks import RUN_DIR_PLACEHOLDER
from monetk.config import resolve
from monetk_runner.cli import build_parser
from monetk_runner.expand import load_runs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def runner_commands() -> list[list[str]]:
    """Every ``python runner.py ...`` invocation in the README's bash blocks, as argv lists."""
    commands = []
    for block in fenced("bash"):
        for line in block.splitlines():
            line = line.split("#")[0]
            for part in line.split("&&"):
                words = shlex.split(part)
                if words[:2] == ["python", "runner.py"]:
                    commands.append(words[2:])
    return commands


def test_readme_names_the_quick_start_and_the_three_paper_specs():
    commands = [" ".join(c) for c in runner_commands()]
    assert "specs/section3_2.yaml --profile demo" in commands
    assert "specs/section3_2.yaml --profile smoke --out /tmp/monetk-smoke" in commands
    for name in ("section3_1", "section3_2", "section3_3"):
        assert f"specs/{name}.yaml" in README


def test_every_runner_command_in_the_readme_parses_and_its_spec_loads():
    parser = build_parser()
    assert len(runner_commands()) >= 4
    for argv in runner_commands():
        args = parser.parse_args(argv)
        assert (ROOT / args.spec).is_file(), args.spec
        spec, runs = load_runs(ROOT / args.spec, args.profile, args.sets)
        assert runs, argv


def test_every_spec_file_and_link_the_readme_names_exists():
    for path in set(re.findall(r"specs/[\w.]+\.yaml", README)) - {"specs/mse_mask.yaml"}:
        assert (ROOT / path).is_file(), path
    for link in re.findall(r"\]\(((?:docs|specs|bench)/[^)]+)\)", README):
        path, _, anchor = link.partition("#")
        assert (ROOT / path).exists(), link
        if anchor:  # a heading of the linked markdown, as GitHub makes its anchor
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(encoding="utf-8"), re.M)
            anchors = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                       for h in headings}
            assert anchor in anchors, (link, sorted(anchors))


def test_the_test_command_is_the_one_ci_runs():
    section = README.split("## Test", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    (command,) = block.strip().splitlines()
    assert command == 'pip install -e ".[dev]" && pytest'
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    runs = [line for line in ci.splitlines() if line.startswith(command)]
    assert runs == [f"{command} || status=$?"], runs  # exactly as printed, exit status kept
    assert "python3 -m pytest" not in ci and "-m pytest" not in ci
    assert 'python3 -m pip install --quiet "torch==2.13.0"' in ci and "ruff check ." in ci


def test_the_readme_says_how_to_get_the_cpu_only_torch():
    run = README.split("## Run", 1)[1].split("\n## ", 1)[0]
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in run


def test_the_ablation_example_is_a_valid_spec(tmp_path):
    example = next(block for block in fenced("yaml") if "name: mse_mask" in block)
    content = yaml.safe_load(example)
    content["extends"] = str(ROOT / "specs" / content["extends"])
    path = tmp_path / "mse_mask.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    spec, runs = load_runs(path, "demo")
    assert list(spec.conditions) == ["MSE+M", "MSE", "MSE+Mx"]
    gammas = {(r.dataset, r.condition): r.config["loss"]["gamma"] for r in runs}
    assert gammas[("objects_room", "MSE+Mx")] == 0.1
    assert gammas[("multi_dsprites", "MSE+Mx")] == 0.01
    assert {r.config["loss"]["reconstruction"] for r in runs} == {"mse"}


def test_the_callbacks_example_is_a_valid_run_configuration():
    example = next(block for block in fenced("yaml") if "callbacks:" in block)
    (entry,) = resolve(yaml.safe_load(example)["defaults"])["train"]["callbacks"]
    assert entry["class"] == "keras.callbacks.CSVLogger"
    assert entry["args"]["filename"].startswith(RUN_DIR_PLACEHOLDER)


def test_the_sequential_example_is_valid_for_section_3_1s_and_3_2s_tests():
    example = yaml.safe_load(next(block for block in fenced("yaml") if "sequential:" in block))
    tests = [{"name": "nll_vs_ir"}, {"name": "beta"}]
    assert validate_sequential(example["sequential"], tests, seed_count=100) == []
    assert validate_sequential(example["sequential"], tests, seed_count=50) == [
        "sequential.max_seeds: 100 is more than the spec's 50 seeds"]


def test_the_readme_smoke_command_writes_a_report(tmp_path):
    argv = next(c for c in runner_commands() if "smoke" in c)
    argv[argv.index("--out") + 1] = str(tmp_path / "out")
    done = subprocess.run([sys.executable, "runner.py", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(8 ok, 0 failed, 0 missing)" in done.stdout
    assert (tmp_path / "out" / "section3_2" / "report" / "report.md").is_file()


def test_the_quick_start_shows_the_fetch_command_and_every_profile():
    from monetk.data.__main__ import build_parser as data_parser

    run = README.split("## Run", 1)[1].split("\n## ", 1)[0]
    quick_start = run.split("### Paper scale", 1)[0]
    fetches = [shlex.split(line.split("#")[0])[3:] for block in fenced("bash")
               for line in block.splitlines() if line.startswith("python -m monetk.data ")]
    assert fetches and all(data_parser().parse_args(argv).command == "fetch" for argv in fetches)
    assert "python -m monetk.data fetch multi_dsprites objects_room" in quick_start
    assert "python -m monetk.data fetch multi_dsprites objects_room" in run.split(
        "### Paper scale", 1)[1]
    assert "gsutil" not in README
    commands = [shlex.split(line.split("#")[0]) for block in re.findall(
        r"```bash\n(.*?)```", quick_start, flags=re.S) for line in block.splitlines()]
    profiles = {build_parser().parse_args(c[2:]).profile for c in commands
                if c[:3] == ["python", "runner.py", "specs/section3_3.yaml"]}
    assert profiles == {"smoke", "quick", "demo", None}  # None: the default, paper
