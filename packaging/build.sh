#!/usr/bin/env bash
# Build the studio for Linux x86_64: a PyInstaller one-folder app, a portable tarball and a .deb.
#
#   packaging/build.sh cpu|gpu [--no-venv] [--no-freeze]
#
# Outputs (VERSION from studio/__init__.py):
#   dist/FLAVOUR/studio/                                  the one-folder app (run ./studio)
#   dist/studio-VERSION-linux-x86_64-FLAVOUR.tar.zst      portable tarball of that folder (.tar.xz with COMPRESS=xz)
#   dist/studio-FLAVOUR_VERSION_amd64.deb                 installs /opt/studio, /usr/bin/studio, menu entry
#
# Steps: (1) a clean venv build/venv-FLAVOUR with packaging/requirements-FLAVOUR.txt (skipped
# with --no-venv when it exists), (2) PyInstaller with packaging/studio.spec, (3) tarball and
# .deb with dpkg-deb. Runs niced: the freeze is CPU-bound and takes a while.
# Environment: PYTHON (3.10-3.12 with a shared libpython; default python3.11), TORCH_CPU_INDEX
# (index for the +cpu torch wheel; default https://download.pytorch.org/whl/cpu), COMPRESS (zstd,
# the default, or xz), ZSTD_LEVEL (default 10), XZ_LEVEL (default 6). zstd because xz -6 of the
# several-GB gpu app takes most of an hour on 2 cores; see packaging/README.md for the measurements.
set -euo pipefail

FLAVOUR="${1:-}"
case "$FLAVOUR" in cpu|gpu) ;; *) echo "usage: packaging/build.sh cpu|gpu [--no-venv] [--no-freeze]" >&2; exit 2;; esac
shift
MAKE_VENV=1; FREEZE=1
for arg in "$@"; do
    case "$arg" in
        --no-venv) MAKE_VENV=0;;
        --no-freeze) FREEZE=0;;
        *) echo "unknown option $arg" >&2; exit 2;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' studio/__init__.py)"
VENV="build/venv-$FLAVOUR"
WORK="build/$FLAVOUR"
DIST="dist/$FLAVOUR"
APP="$DIST/studio"
COMPRESS="${COMPRESS:-zstd}"
ZSTD_LEVEL="${ZSTD_LEVEL:-10}"
XZ_LEVEL="${XZ_LEVEL:-6}"
case "$COMPRESS" in
    zstd) TAR_EXT=tar.zst; TAR_COMPRESSOR=(zstd -q -T0 "-$ZSTD_LEVEL"); DEB_COMPRESS=(-Zzstd "-z$ZSTD_LEVEL");;
    xz) TAR_EXT=tar.xz; TAR_COMPRESSOR=(xz -T0 "-$XZ_LEVEL"); DEB_COMPRESS=(-Zxz "-z$XZ_LEVEL");;
    *) echo "COMPRESS must be zstd or xz" >&2; exit 2;;
esac
NICE="nice -n 10"
step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
T0=$(date +%s)

if [ "$MAKE_VENV" = 1 ] || [ ! -x "$VENV/bin/python" ]; then
    step "venv $VENV"
    "${PYTHON:-python3.11}" -m venv --clear "$VENV"
    EXTRA=()
    [ "$FLAVOUR" = cpu ] && EXTRA=(--extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}")
    $NICE "$VENV/bin/pip" install --disable-pip-version-check -q "${EXTRA[@]}" -r "packaging/requirements-$FLAVOUR.txt"
fi

T_VENV=$(date +%s)
if [ "$FREEZE" = 1 ]; then
    step "freeze with PyInstaller ($FLAVOUR)"
    mkdir -p "$WORK"
    printf '{"flavour": "%s", "version": "%s", "built": "%s", "commit": "%s"}\n' "$FLAVOUR" "$VERSION" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        > "$WORK/studio_build.json"
    PYTHONPATH="$ROOT" STUDIO_FLAVOUR="$FLAVOUR" STUDIO_BUILD_INFO="$ROOT/$WORK/studio_build.json" \
        $NICE "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
        --distpath "$DIST" --workpath "$WORK/work" packaging/studio.spec
    # readable by every user once installed under /opt (some inputs are created 0600)
    chmod -R u+rwX,go+rX,go-w "$APP"
fi
[ -x "$APP/studio" ] || { echo "no frozen app at $APP (run without --no-freeze)" >&2; exit 1; }

T_FROZEN=$(date +%s)
step "tarball ($COMPRESS)"
TARBALL="dist/studio-$VERSION-linux-x86_64-$FLAVOUR.$TAR_EXT"
STAGE_TAR="$WORK/tar/studio-$VERSION-$FLAVOUR"
rm -rf "$WORK/tar" && mkdir -p "$STAGE_TAR"
cp -al "$APP/." "$STAGE_TAR/"  # hard links: no second copy of several GB
install -m 644 packaging/linux/studio.desktop packaging/linux/studio.svg "$STAGE_TAR/"
install -m 755 packaging/linux/install-desktop-entry.sh "$STAGE_TAR/"
tar -C "$WORK/tar" --owner=0 --group=0 --numeric-owner -cf - "studio-$VERSION-$FLAVOUR" \
    | $NICE "${TAR_COMPRESSOR[@]}" > "$TARBALL"
T_TAR=$(date +%s)

step "deb ($COMPRESS)"
PKG="studio-$FLAVOUR"
OTHER="studio-$([ "$FLAVOUR" = cpu ] && echo gpu || echo cpu)"
DEB="dist/${PKG}_${VERSION}_amd64.deb"
STAGE="$WORK/deb"
rm -rf "$STAGE" && mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/icons/hicolor/256x256/apps" "$STAGE/usr/share/icons/hicolor/scalable/apps"
cp -al "$APP" "$STAGE/opt/studio"
install -m 755 packaging/linux/studio-wrapper.sh "$STAGE/usr/bin/studio"
install -m 644 packaging/linux/studio.desktop "$STAGE/usr/share/applications/studio.desktop"
install -m 644 packaging/linux/studio.png "$STAGE/usr/share/icons/hicolor/256x256/apps/studio.png"
install -m 644 packaging/linux/studio.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/studio.svg"
install -m 755 packaging/linux/postinst packaging/linux/postrm "$STAGE/DEBIAN/"
sed -e "s/@PACKAGE@/$PKG/" -e "s/@OTHER@/$OTHER/" -e "s/@VERSION@/$VERSION/" -e "s/@FLAVOUR@/$FLAVOUR/" \
    -e "s/@SIZE_KB@/$(du -sk "$STAGE" | cut -f1)/" packaging/linux/control.in > "$STAGE/DEBIAN/control"
$NICE dpkg-deb --root-owner-group "${DEB_COMPRESS[@]}" --build "$STAGE" "$DEB" >/dev/null
rm -rf "$WORK/tar" "$STAGE"  # staging copies of the app (several GB for gpu)
T_DEB=$(date +%s)

step "done in $(( T_DEB - T0 )) s (venv $(( T_VENV - T0 )) s, freeze $(( T_FROZEN - T_VENV )) s, tarball $(( T_TAR - T_FROZEN )) s, deb $(( T_DEB - T_TAR )) s)"
printf '%-60s %s\n' "$APP (unpacked)" "$(du -sh "$APP" | cut -f1)"
for f in "$TARBALL" "$DEB"; do printf '%-60s %s\n' "$f" "$(du -h "$f" | cut -f1)"; done
