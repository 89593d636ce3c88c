#!/usr/bin/env bash
# Gitea's and Forgejo's markdown renderer for the forge tests: a small program over goldmark
# (tests/goldmark/main.go), built into <repo>/.cache/goldmark/render from Debian's Go and
# Debian's goldmark sources (golang-go, golang-github-yuin-goldmark-dev), offline, in GOPATH
# mode. Idempotent: built again only when main.go changes.
# Usage: bash tests/goldmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."

src=/usr/share/gocode/src/github.com/yuin/goldmark/markdown.go
bash .ci/apt-packages.sh --strict go=golang-go || exit 2
if [ ! -f "$src" ]; then
  # no program to look for: a name never found makes the script install the package
  bash .ci/apt-packages.sh --strict fleetwarden-no-goldmark=golang-github-yuin-goldmark-dev \
    || exit 2
fi
dest="$PWD/.cache/goldmark"
stamp="$dest/main.go"
if [ -x "$dest/render" ] && cmp -s tests/goldmark/main.go "$stamp"; then
  exit 0
fi
echo "== building the goldmark renderer into $dest"
mkdir -p "$dest"
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$dest/cache" GOFLAGS= \
  go build -o "$dest/render" tests/goldmark/main.go
cp tests/goldmark/main.go "$stamp"
