#!/usr/bin/env bash
# Regenerates README.md's table of configuration variables from their declarations
# (`widget-sessions env --markdown`), between the `variables:begin` and `variables:end`
# markers. A test fails when the table is out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(cargo run -q -p widget-sessions -- env --markdown)
python3 - "$table" <<'PY'
import sys
table = sys.argv[1] + "\n"
path = "README.md"
text = open(path).read()
begin, end = "<!-- variables:begin -->\n", "<!-- variables:end -->"
a = text.index(begin) + len(begin)
b = text.index(end)
open(path, "w").write(text[:a] + table + text[b:])
PY
