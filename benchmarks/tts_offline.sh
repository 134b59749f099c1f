#!/usr/bin/env bash
# The offline TTS systems on the embedded default (task=tts: 50 Harvard sentences), judged by the
# task's default judge (PocketSphinx after Whisper's normaliser): corpus and utterance-mean WER,
# and the generation and scoring times metrics.json records (the load average is printed beside
# them: on a shared machine they measure the machine as much as the models).
# usage: bash benchmarks/tts_offline.sh [RESULTS_DIR] [MODEL ...]
#        (default: a temporary dir; models flite flite_awb flite_slt espeak)
set -euo pipefail
out=${1:-$(mktemp -d)}; shift || true
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(flite flite_awb flite_slt espeak)
printf '| model | wer_corpus %% | wer_utt_mean %% | n | errors | generate s | score s | load avg |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for m in "${models[@]}"; do
  mio-eval task=tts "model=$m" "paths.results_dir=$out" runner.progress=false runner.overwrite=true >/dev/null
  python3 - "$out/$m/tts/metrics.json" "$m" <<'PY'
import json, os, sys
m = json.load(open(sys.argv[1]))
wer = {k: 100 * m["metrics"][k]["value"] for k in ("wer_corpus", "wer_utt_mean")}
t = m.get("times", {})
print(f"| {sys.argv[2]} | {wer['wer_corpus']:.1f} | {wer['wer_utt_mean']:.1f} | {m['n']} | {m['n_errors']} "
      f"| {t.get('generate_s', float('nan')):.1f} | {t.get('score_s', float('nan')):.1f} | {os.getloadavg()[0]:.1f} |")
PY
done
echo "results: $out"
