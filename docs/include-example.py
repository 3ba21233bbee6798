#!/usr/bin/env python3
# Regenerate part two of docs/writing-a-plugin.md from crates/endpoints-example-plugin
# (the quoted blocks between ANCHOR markers); tests/guide.rs of that crate checks the result.
import os
root=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..') + '/'
def anchor(path,name):
    src=open(root+path).read().split('\n')
    out=None
    for l in src:
        m=l.strip().lstrip('/').lstrip('#').strip()
        if m==f'ANCHOR: {name}': out=[]
        elif m==f'ANCHOR_END: {name}': return '\n'.join(out)
        elif out is not None: out.append(l)
    raise SystemExit(f'no anchor {name} in {path}')
def inc(path,name,lang):
    return f'<!-- include: {path}#{name} -->\n```{lang}\n{anchor(path,name)}\n```\n'
L='crates/endpoints-example-plugin/src/lib.rs'
T='crates/endpoints-example-plugin/tests/conformance.rs'
M='crates/endpoints-example-plugin/Cargo.toml'
part2 = f'''
# Part two: a wrapper

A wrapper is a type whose description ends with another description: `haproxy:tcp:8080`,
`tls:...:endpoint=...`, or the example below. The worked example is a real crate of this
workspace, `crates/endpoints-example-plugin` (`publish = false`; CI builds, lints and tests
it with the rest). Every code block of this part is copied from it, and its test
`tests/guide.rs` fails when a block here and the crate differ, so what you read compiles.
(After changing the crate, run `python3 docs/include-example.py` or copy the blocks by hand.)

`greet:[text=TEXT:]<any client description>` connects with the inner description, sends one
line, then hands the connection over: `greet:text=HELO\\ me:tcp:localhost:25`.

## 8. The manifest

{inc(M,'manifest','toml')}
The wrapper's own code needs no transport: the inner description is built through the
registry, so any linked prefix works. Its tests do need one to wrap: add a transport crate
(here `endpoints-tcp`) as a **dev-dependency** only, so your users pick their transports.

## 9. Options first, then the inner description

The wrapper declares its own options as any type does:

{inc(L,'params','rust')}
The description is split where the inner one starts (its prefix is the second positional
field). `Description::slice` and `Description::tail` cut a description into parts that keep
the original input and spans:

{inc(L,'split','rust')}
Build the options with `Args::parse` on the head (an unknown option is reported against
`greet`), and the inner endpoint with `registry::build_client` (or `build_server`) on the
tail. Because the tail shares the input, an error inside the inner description points into
the text the user wrote, not into a copy: for `greet:text=hi:tcp:localhost:prot=80` the caret
is under `prot`, 29 columns in. Return it unchanged with `?`.

{inc(L,'build','rust')}
## 10. Compose `Display`

The canonical form of a wrapper is its own options (`args.canonical()`, every default
spelled out) followed by the inner endpoint's canonical form, so that parsing it again
gives an equal endpoint (the conformance suite checks this round trip):

{inc(L,'endpoint','rust')}
I/O errors of the inner endpoint already name it; name your own endpoint in errors of your
own step with `io_error(Operation::Connect, self, e)`. A server wrapper does its
per-connection step (a header, a handshake) off the accept loop with
`endpoints_core::upgrade::UpgradeListener`, and carries the inner connection's `Extensions`
into the connection it returns (`Connection::into_parts` / `from_parts`).

## 11. Register the client side

{inc(L,'register','rust')}
## 12. Test a wrapper

`Suite::client` runs the same checks as `Suite::server` for a client type. A test binary is
a separate crate: it links your crate only if it names it, so start the tests with
`use your_crate as _;` (and `use endpoints_tcp as _;` for the transport you wrap), or the
suite stops with "no client plugin `greet` is registered; is the crate linked?".

{inc(T,'tests','rust')}
'''
p=root+'docs/writing-a-plugin.md'
s=open(p).read()
marker='\n# Part two: a wrapper\n'
if marker in s:
    s=s[:s.index(marker)]
else:
    s=s.replace("""written exactly as a third party would write it.
""","""written exactly as a third party would write it. Part two writes a *wrapper* (a type whose
rest is another description), from a crate that CI builds and that this guide quotes
verbatim: `crates/endpoints-example-plugin`.
""",1)
s=s.rstrip('\n')+'\n'+part2
open(p,'w').write(s)
