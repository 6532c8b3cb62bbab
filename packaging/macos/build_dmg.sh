#!/usr/bin/env bash
# macOS build: Studio.app (PyInstaller's BUNDLE step in studio.spec) packed into a DMG.
# NOT RUN YET: written alongside the Linux build, which is the one built and tested.
#   packaging/macos/build_dmg.sh          (Apple silicon; the cpu flavour: torch uses MPS, no CUDA)
# Needs Python 3.11 from python.org (a framework build) and hdiutil (part of macOS). Unsigned:
# sign and notarize with `codesign --deep` / `xcrun notarytool` before distributing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' studio/__init__.py)"
VENV=build/venv-macos
python3.11 -m venv --clear "$VENV"
# macOS torch wheels on PyPI are CPU+MPS builds; bitsandbytes is not installed (no CUDA)
"$VENV/bin/pip" install -r packaging/requirements-common.txt torch==2.13.0 pillow
mkdir -p build/macos
printf '{"flavour": "macos", "version": "%s", "built": "%s"}\n' "$VERSION" "$(date -u +%FT%TZ)" > build/macos/studio_build.json
STUDIO_FLAVOUR=macos STUDIO_BUILD_INFO="$ROOT/build/macos/studio_build.json" \
    "$VENV/bin/pyinstaller" --noconfirm --distpath dist/macos --workpath build/macos/work packaging/studio.spec
dist/macos/Studio.app/Contents/MacOS/studio --self-test
rm -rf build/macos/dmg && mkdir -p build/macos/dmg
cp -R dist/macos/Studio.app build/macos/dmg/
ln -s /Applications build/macos/dmg/Applications
hdiutil create -volname "Studio $VERSION" -srcfolder build/macos/dmg -ov -format UDZO "dist/studio-$VERSION-macos-arm64.dmg"
