#!/usr/bin/env bash
# Install a built bundle for one user (no root): the bundle, a `xscreen` launcher on PATH,
# the desktop entry and the icons.
#   packaging/install_desktop.sh [BUNDLE_DIR]      (default packaging/dist/xscreen)
#   PREFIX=~/.local (default)  ->  $PREFIX/opt/xscreen, $PREFIX/bin/xscreen,
#                                  $PREFIX/share/applications/xscreen.desktop, $PREFIX/share/icons/...
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUNDLE=$(cd "${1:-$HERE/dist/xscreen}" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
ICONS="$HERE/../resources/icons"
[ -x "$BUNDLE/xscreen" ] || { echo "error: $BUNDLE/xscreen: no built bundle (run packaging/build.sh)" >&2; exit 2; }

mkdir -p "$PREFIX/opt" "$PREFIX/bin" "$PREFIX/share/applications" "$PREFIX/share/icons/hicolor/scalable/apps"
rm -rf "$PREFIX/opt/xscreen.new"
cp -a "$BUNDLE" "$PREFIX/opt/xscreen.new"
rm -rf "$PREFIX/opt/xscreen"
mv "$PREFIX/opt/xscreen.new" "$PREFIX/opt/xscreen"
ln -sfn "$PREFIX/opt/xscreen/xscreen" "$PREFIX/bin/xscreen"
for size in 16 32 48 64 128 256 512; do
    mkdir -p "$PREFIX/share/icons/hicolor/${size}x${size}/apps"
    cp "$ICONS/xscreen-$size.png" "$PREFIX/share/icons/hicolor/${size}x${size}/apps/xscreen.png"
done
cp "$ICONS/xscreen.svg" "$PREFIX/share/icons/hicolor/scalable/apps/xscreen.svg"
# Absolute Exec/TryExec: the entry works even where $PREFIX/bin is not on the desktop's PATH.
sed -e "s|^Exec=xscreen|Exec=$PREFIX/opt/xscreen/xscreen|" \
    -e "s|^TryExec=xscreen|TryExec=$PREFIX/opt/xscreen/xscreen|" \
    "$HERE/xscreen.desktop" > "$PREFIX/share/applications/xscreen.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$PREFIX/share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" || true
echo "installed: $PREFIX/opt/xscreen (launcher $PREFIX/bin/xscreen, menu entry xscreen.desktop)"
