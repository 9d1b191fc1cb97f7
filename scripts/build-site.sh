#!/usr/bin/env bash
# Builds the dashboard's browser side into target/site/pkg: the hydration wasm (wasm-bindgen), and the styles.
# With --release the wasm is optimised (release profile + wasm-opt from the npm package binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

profile=debug
cargo_profile=()
if [ "${1:-}" = "--release" ]; then
    profile=wasm-release
    cargo_profile=(--profile wasm-release)
fi

ensure_wasm_toolchain
step "Building the dashboard's browser code ($profile)"
cargo build --locked -p frontend --lib --target wasm32-unknown-unknown "${cargo_profile[@]}"
site=target/site
mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-name "$OUTPUT_NAME" --out-dir "$site/pkg" \
    "target/wasm32-unknown-unknown/$profile/frontend.wasm"
if [ "$profile" = wasm-release ]; then
    ensure_wasm_opt
    tools/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
        "$site/pkg/${OUTPUT_NAME}_bg.wasm" -o "$site/pkg/${OUTPUT_NAME}_bg.wasm"
fi
cat style/*.css > "$site/pkg/$OUTPUT_NAME.css"
