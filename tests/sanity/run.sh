#!/usr/bin/env bash
# Runs `ansible-test sanity` offline on a copy of the collection.
#
# ansible-test must run from inside ansible_collections/<namespace>/<name>, and resolves the
# real path, so a symlink is not enough: copy the files git knows (tracked and untracked but
# not ignored) into .build/sanity/. The PSMDB emulator and the PyKMIP test lab are test tools,
# not collection content (galaxy.yml build_ignore), so they are left out of the copy. So are the
# pytest suites (tests/unit, tests/integration, tests/rotation_faults): ruff checks them, and leaving them out keeps
# sanity's pylint run short on a 2-core machine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$repo/.venv}
dest=$repo/.build/sanity/ansible_collections/kmipops/psmdb
python=$venv/bin/python

# ansible-test fetches a get-pip script from the internet; these machines reach only the
# package registries. This stand-in does the same job with ensurepip + pip.
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
for name in get_pip_24_2.py get_pip_24_0.py get_pip_23_1_2.py; do
  cat >"$cache/$name" <<'PY'
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip"], check=True)
subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)
PY
done

rm -rf "$dest"
mkdir -p "$dest"
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | grep -z -v -E '^(tests/psmdb_emulator|tests/kmiplab|tests/images|tests/unit|tests/integration|tests/rotation_faults|bench|molecule|\.ci)/' \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -C "$dest" -xf -

# ansible-test lists the files through git; give the copy its own index so it does not see
# the enclosing checkout (where .build/ is ignored).
cd "$dest"
git init -q . && git add -A
export PATH=$venv/bin:$PATH
exec ansible-test sanity --local --python "$($python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --requirements --color no "$@"
