#!/usr/bin/env bash
# Regenerates everything committed under weights/, results/ and docs/ from a clean checkout:
# distils the default students, benchmarks every model whose weights are available,
# measures efficiency, and rebuilds the leaderboard. Run from the repository root. The teacher
# is the committed weights/egemaps-teacher (scripts/fit_teacher.py refits it; a refit's hash follows the CPU).
#   bash scripts/reproduce.sh                # default students
#   STUDENTS="wav2small wav2small-17k mobilenetv3-small" bash scripts/reproduce.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STUDENTS=${STUDENTS:-"wav2small wav2small-17k mobilenetv4-conv-small"}
# --replace: regenerating means the new models are registered, even where they differ from the
# committed ones (without it distill keeps a committed model and only compares; docs/distillation.md)
for student in $STUDENTS; do
  nox -s distill -- --student "$student" --replace
done
nox -s benchmark -- --model all --no-docs
nox -s efficiency -- --model all
nox -s docs
