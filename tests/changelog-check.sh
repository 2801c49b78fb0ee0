#!/usr/bin/env bash
# `make changelog-lint`: the changelog fragments and changelogs/changelog.yaml are valid, and the
# release notes that `antsibull-changelog release` would produce from them now render.
#
# 1. antsibull-changelog silently skips fragments whose name does not end in .yml
#    (ignore_other_fragment_extensions), so such a file is an error here, not a lost entry; and
#    ansible-lint reads any *playbook*.yml as a playbook, so that name is refused too.
# 2. `antsibull-changelog lint` (YAML, sections, RST of every entry) and `lint-changelog-yaml`.
# 3. A rehearsal of the next release on a throwaway copy of the collection: `release` with the
#    version of galaxy.yml, then the Markdown (what CHANGELOG.md will be) and an RST rendering,
#    which rstcheck checks. The Markdown is kept in OUTDIR (default .build/changelog-preview)
#    to read what the release will say; nothing in the checkout changes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${VENV:-$repo/.venv}/bin
outdir=${1:-$repo/.build/changelog-preview}
cd "$repo"

stray=$(find changelogs/fragments -mindepth 1 ! -name '*.yml' ! -name .keep)
if [ -n "$stray" ]; then
  echo "not changelog fragments (antsibull-changelog reads only changelogs/fragments/*.yml):" >&2
  echo "$stray" >&2
  exit 1
fi
# ansible-lint takes any **/*playbook*.yml for a playbook and fails on it
misnamed=$(find changelogs/fragments -name '*playbook*')
if [ -n "$misnamed" ]; then
  echo "rename these fragments: ansible-lint reads a file named *playbook*.yml as a playbook:" >&2
  echo "$misnamed" >&2
  exit 1
fi
"$bin/antsibull-changelog" lint
"$bin/antsibull-changelog" lint-changelog-yaml --strict changelogs/changelog.yaml

version=$(sed -n -E 's/^version:[[:space:]]*"?([^"[:space:]]+)"?.*/\1/p' galaxy.yml)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/ansible_collections/kmipops/psmdb
mkdir -p "$copy"
cp -r galaxy.yml meta plugins roles playbooks changelogs "$copy/"
rm -f "$copy/changelogs/.plugin-cache.yaml"
(
  cd "$copy"
  export ANSIBLE_COLLECTIONS_PATH=$tmp ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
  if "$bin/python" -c 'import sys, yaml; sys.exit(sys.argv[1] not in (yaml.safe_load(open("changelogs/changelog.yaml"))["releases"] or {}))' "$version"; then
    echo "changelog: $version is released already; rendering the existing notes"
  else
    "$bin/antsibull-changelog" release --version "$version" --ansible-doc-bin "$bin/ansible-doc"
  fi
  "$bin/antsibull-changelog" generate --output-format md --output "$tmp/CHANGELOG.md"
  "$bin/antsibull-changelog" generate --output-format rst --output "$tmp/CHANGELOG.rst"
)
"$bin/rstcheck" --report-level warning "$tmp/CHANGELOG.rst"
mkdir -p "$outdir"
cp "$tmp/CHANGELOG.md" "$outdir/CHANGELOG.md"
echo "changelog: fragments valid; release notes of $version render ($(grep -c '' "$outdir/CHANGELOG.md") lines): $outdir/CHANGELOG.md"
