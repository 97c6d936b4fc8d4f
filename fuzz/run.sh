#!/usr/bin/env bash
# Builds the libFuzzer targets (stable Rust, SanitizerCoverage as cargo-fuzz sets it up) and
# runs each for a bounded time, seeded with the real evidence in $SOVRA_VECTORS.
# Usage: fuzz/run.sh [seconds per target, default 10]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-10}"
vectors="${SOVRA_VECTORS:-$(cd ../.. && pwd)/shared/vectors}"
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-target}"
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  cargo build --release --locked --bins --target "$target"
bin="$CARGO_TARGET_DIR/$target/release"
seed() { # target, then globs under the vectors directory
  local t="$1"; shift
  local dir="corpus/$t"; mkdir -p "$dir"
  for g in "$@"; do for f in $vectors/$g; do [ -f "$f" ] && cp "$f" "$dir/" ; done; done
  echo "== $t (${secs}s)"
  "$bin/$t" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "$dir" 2>&1 | tail -1
}
seed sev_snp 'snp/*.bin' 'snp/*.hex'
seed tdx 'tdx/*.dat' 'tdx/*.bin'
seed sgx 'sgx/*.bin'
seed tpm 'tpm/*.pb'
seed nitro 'nitro/*.cose' 'nitro/*.b64'
seed nvidia_gpu 'nvidia_gpu/*.hex.txt'
seed az_snp_vtpm 'azure_snp_vtpm/*.json'
seed az_tdx_vtpm 'azure_tdx_vtpm/*.json'
seed vendor_collateral 'tdx/*.json' 'sgx/*.json' 'snp/*.bin'
# Policy languages, tokens and request bodies: seeded from the repository's own examples.
seed_dir() { # target, then files to copy into its corpus
  local t="$1"; shift
  local dir="corpus/$t"; mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/"; done
  echo "== $t (${secs}s)"
  "$bin/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=0 "$dir" 2>&1 | tail -1
}
seed_dir maa_policy seeds/maa/*
seed_dir rego_gate seeds/rego/*
seed_dir skr_policy seeds/skr/*
seed_dir jws seeds/jws/*
seed_dir attest_request seeds/attest/*
