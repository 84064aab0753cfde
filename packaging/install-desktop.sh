#!/usr/bin/env bash
# Install the built bundle for the current user: the program, a `trading-console` command,
# the desktop entry and its icons. `--uninstall` removes exactly those again; the journal,
# config, credentials and logs are never touched.
#
#   packaging/install-desktop.sh [BUNDLE_DIR]      # default: the folder this script is in, or dist/trading-console
#   packaging/install-desktop.sh --uninstall
#
# PREFIX (default ~/.local) and XDG_DATA_HOME (default ~/.local/share) move the targets.
set -euo pipefail

NAME=trading-console
PREFIX="${PREFIX:-$HOME/.local}"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
APP_DIR="$PREFIX/lib/$NAME"
BIN_LINK="$PREFIX/bin/$NAME"
DESKTOP_FILE="$DATA_HOME/applications/$NAME.desktop"
ICON_ROOT="$DATA_HOME/icons/hicolor"
SIZES="16 24 32 48 64 128 256 512"

refresh_caches() {
    # optional tools: menus pick the entry up without them, only later
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA_HOME/applications" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$ICON_ROOT" 2>/dev/null || true
}

uninstall() {
    rm -rf -- "$APP_DIR"
    if [ -L "$BIN_LINK" ]; then rm -f -- "$BIN_LINK"; fi
    rm -f -- "$DESKTOP_FILE" "$ICON_ROOT/scalable/apps/$NAME.svg"
    for s in $SIZES; do rm -f -- "$ICON_ROOT/${s}x${s}/apps/$NAME.png"; done
    refresh_caches
    echo "removed $APP_DIR, $BIN_LINK, $DESKTOP_FILE and the icons"
    echo "kept your data: ~/.config/$NAME, ~/.local/share/$NAME, ~/.local/state/$NAME (delete them by hand to forget everything)"
}

install_bundle() {
    local here bundle res
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    if [ $# -ge 1 ]; then
        bundle="$1"
    elif [ -x "$here/$NAME" ]; then
        bundle="$here"
    else
        bundle="$here/../dist/$NAME"
    fi
    bundle="$(cd "$bundle" 2>/dev/null && pwd)" || { echo "no bundle at ${1:-$here/../dist/$NAME}: run make installer" >&2; exit 1; }
    [ -x "$bundle/$NAME" ] || { echo "$bundle/$NAME is missing: run make installer" >&2; exit 1; }
    res="$bundle/_internal/resources"
    [ -f "$res/$NAME.desktop" ] || { echo "$res/$NAME.desktop is missing: rebuild the bundle" >&2; exit 1; }

    # copy beside, then swap, so a failed copy never leaves half an installation
    mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$DATA_HOME/applications"
    rm -rf -- "$APP_DIR.new"
    cp -a "$bundle" "$APP_DIR.new"
    rm -rf -- "$APP_DIR"
    mv "$APP_DIR.new" "$APP_DIR"
    ln -sfn "$APP_DIR/$NAME" "$BIN_LINK"

    # absolute Exec/TryExec: the menu entry works even when ~/.local/bin is not on the session's PATH
    sed -e "s|^Exec=.*|Exec=$APP_DIR/$NAME|" -e "s|^TryExec=.*|TryExec=$APP_DIR/$NAME|" \
        "$res/$NAME.desktop" > "$DESKTOP_FILE"
    chmod 644 "$DESKTOP_FILE"
    for s in $SIZES; do
        if [ -f "$res/icons/$NAME-$s.png" ]; then
            install -Dm644 "$res/icons/$NAME-$s.png" "$ICON_ROOT/${s}x${s}/apps/$NAME.png"
        fi
    done
    install -Dm644 "$res/icons/$NAME.svg" "$ICON_ROOT/scalable/apps/$NAME.svg"
    refresh_caches
    echo "installed $APP_DIR"
    echo "command: $BIN_LINK   menu entry: $DESKTOP_FILE"
}

case "${1:-}" in
    --uninstall) uninstall ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) install_bundle "$@" ;;
esac
