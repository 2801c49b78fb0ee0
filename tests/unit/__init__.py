# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The unit tests are packages: pytest imports them as ``unit.plugins...`` with ``tests/`` put on
# sys.path (its default "prepend" import mode), so test files in different directories may share
# a base name (the tree mirrors plugins/module_utils/), and ``kmiplab`` (tests/kmiplab) and
# ``unit.utils`` are importable from every test.
