#!/usr/bin/env bash
# The offline TTS systems on the embedded default (task=tts: 50 Harvard sentences), judged by the
# task's default judge (PocketSphinx after Whisper's normaliser): generation and scoring timed
# separately (runner.stage=generate, then runner.stage=score), then corpus / utterance-mean WER.
# usage: bash benchmarks/tts_offline.sh [RESULTS_DIR] [MODEL ...]   (default: a temp dir; flite flite_awb flite_slt espeak)
set -euo pipefail
out=${1:-$(mktemp -d)}; shift || true
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(flite flite_awb flite_slt espeak)
printf '| model | wer_corpus %% | wer_utt_mean %% | n | errors | generate s | score s |\n|---|---|---|---|---|---|---|\n'
for m in "${models[@]}"; do
  args=(task=tts "model=$m" "paths.results_dir=$out" runner.progress=false runner.overwrite=true)
  t0=$(date +%s.%N); mio-eval "${args[@]}" runner.stage=generate >/dev/null
  t1=$(date +%s.%N); mio-eval "${args[@]/runner.overwrite=true/runner.overwrite=false}" runner.stage=score >/dev/null
  t2=$(date +%s.%N)
  python3 - "$out/$m/tts/metrics.json" "$m" "$t0" "$t1" "$t2" <<'PY'
import json, sys
path, model, t0, t1, t2 = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
m = json.load(open(path))
wer = {k: 100 * m["metrics"][k]["value"] for k in ("wer_corpus", "wer_utt_mean")}
print(f"| {model} | {wer['wer_corpus']:.1f} | {wer['wer_utt_mean']:.1f} | {m['n']} | {m['n_errors']} | {t1 - t0:.1f} | {t2 - t1:.1f} |")
PY
done
echo "results: $out"
