#!/usr/bin/env python3
# Refresh every quoted block of docs/recipes.md: the fenced block after each
# `<!-- include: PATH#NAME -->` line becomes the text between `ANCHOR: NAME` and
# `ANCHOR_END: NAME` in PATH. crates/endpoints/tests/recipes (the_doc_quotes_the_recipes_exactly)
# checks the result.
import os, re
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..') + '/'

def anchor(path, name):
    out = None
    for l in open(root + path).read().split('\n'):
        m = l.strip().lstrip('/').lstrip('#').strip()
        if m == f'ANCHOR: {name}':
            out = []
        elif m == f'ANCHOR_END: {name}':
            return '\n'.join(out)
        elif out is not None:
            out.append(l)
    raise SystemExit(f'no anchor {name} in {path}')

doc = root + 'docs/recipes.md'
lines = open(doc).read().split('\n')
out, i = [], 0
while i < len(lines):
    out.append(lines[i])
    m = re.fullmatch(r'<!-- include: (\S+)#(\S+) -->', lines[i].strip())
    if m:
        fence = lines[i + 1]
        out.append(fence)
        out.extend(anchor(m.group(1), m.group(2)).split('\n'))
        i += 2
        while not lines[i].startswith('```'):
            i += 1
        out.append(lines[i])
    i += 1
open(doc, 'w').write('\n'.join(out))
