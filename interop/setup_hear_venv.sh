#!/usr/bin/env bash
# Builds the hear-eval-kit environment (.venv-hear) with the recipe known to work on Python 3.11
# (hear-contract.md §5.3). heareval, hearbaseline and hearvalidator pin numpy 1.19 / numba 0.48,
# which no longer build, so they are installed without their dependencies and the modern ones are
# added with four pins. It is a separate venv because heareval needs pytorch-lightning 1.9 while
# the main environment has Lightning 2.
#
# Idempotent: a stamp holding the hash of this recipe (and of setup.cfg) skips a finished build;
# an interrupted or outdated one is rebuilt from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${HEAR_VENV:-.venv-hear}
# hearvalidator 2021.0.2 (what plain pip picks on Python >= 3.9) lives in its own folder, put in
# front of PYTHONPATH only by the runs that exercise it
OLD_VALIDATOR_DIR=$VENV/hearvalidator-2021.0.2
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$PWD/.cache/pip}
export PIP_DISABLE_PIP_VERSION_CHECK=1

recipe=$(cat interop/setup_hear_venv.sh interop/patch_heareval.py setup.cfg | sha256sum | cut -c1-16)
stamp=$VENV/.interop-recipe
if [[ -f $stamp && $(cat "$stamp") == "$recipe" ]]; then
    echo "$VENV is up to date (recipe $recipe)"
    exit 0
fi

step() {
    echo
    echo "== [setup $(date +%H:%M:%S)] $*"
}
started=$SECONDS
timed() {
    local t0=$SECONDS
    "$@"
    echo "   ($((SECONDS - t0)) s)"
}

step "creating $VENV with $($PYTHON --version)"
rm -rf "$VENV"
timed "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet)

step "torch (not pinned: the newest this machine offers)"
timed "${pip[@]}" torch

step "heareval 2021.1.3 and hearbaseline 2021.1.1 without their (unbuildable) pins"
timed "${pip[@]}" --no-deps heareval==2021.1.3 hearbaseline==2021.1.1

step "hearvalidator 2021.0.6 (declares Requires-Python <3.9) and 2021.0.2 in $OLD_VALIDATOR_DIR"
timed "${pip[@]}" --no-deps --ignore-requires-python hearvalidator==2021.0.6
timed "${pip[@]}" --no-deps --target "$OLD_VALIDATOR_DIR" hearvalidator==2021.0.2

step "the modern dependencies of the three, with the pins they need"
# pytorch-lightning 1.9.5: heareval uses APIs Lightning 2 removed; librosa<0.10: hearbaseline
# calls librosa.filters.mel positionally; setuptools<81: librosa 0.9 imports pkg_resources;
# pandas<3 and numpy<2.4: psds_eval breaks on newer ones
timed "${pip[@]}" tensorflow-cpu "numpy<2.4" "pandas<3" "pytorch-lightning==1.9.5" "librosa<0.10" \
    "setuptools<81" click dcase_util intervaltree more-itertools python-slugify sed_eval \
    soundfile torchinfo tqdm scikit-learn scipy psds_eval

step "atst-hear core (editable, no extras)"
timed "${pip[@]}" -e .

step "checking the environment"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md

lightning = md.version("pytorch-lightning")
assert lightning == "1.9.5", f"heareval needs pytorch-lightning 1.9.5, found {lightning}"
try:
    md.version("lightning")
except md.PackageNotFoundError:
    pass
else:
    raise SystemExit("Lightning 2 ('lightning') got into the hear venv; it must stay out of it")
for name in ("torch", "tensorflow-cpu", "numpy", "pandas", "pytorch-lightning", "librosa",
             "setuptools", "heareval", "hearbaseline", "hearvalidator", "atst-hear"):
    print(f"   {name} {md.version(name)}")
PY

step "patching heareval for hear-eval-kit issue #432"
"$VENV/bin/python" interop/patch_heareval.py

echo "$recipe" >"$stamp"
echo
echo "$VENV ready in $((SECONDS - started)) s ($(du -sh "$VENV" | cut -f1))"
