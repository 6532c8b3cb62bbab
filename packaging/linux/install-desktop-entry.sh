#!/bin/sh
# Portable tarball: add the studio to your menu and `studio` to ~/.local/bin, for this user only.
# Run it from the unpacked folder; run it again after moving the folder. Remove with --remove.
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
ICONS="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
BIN="$HOME/.local/bin"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$APPS/studio.desktop" "$ICONS/studio.svg" "$BIN/studio"
    echo "Removed the menu entry and ~/.local/bin/studio."
    exit 0
fi
mkdir -p "$APPS" "$ICONS" "$BIN"
cp "$HERE/studio.svg" "$ICONS/studio.svg"
sed -e "s|^Exec=studio|Exec=\"$HERE/studio\"|" -e "s|^TryExec=studio|TryExec=$HERE/studio|" \
    "$HERE/studio.desktop" > "$APPS/studio.desktop"
ln -sf "$HERE/studio" "$BIN/studio"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" || true
echo "Added Studio to the menu and linked $BIN/studio (make sure $BIN is on your PATH)."
