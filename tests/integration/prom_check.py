"""Check a Prometheus textfile and print one metric's value.

usage: prom_check.py FILE [METRIC [LABEL=VALUE ...]]

Every sample line must be NAME{LABELS} VALUE with a float VALUE, every
metric must have HELP and TYPE lines before its samples, and no metric may
be described twice (node_exporter rejects such files). With METRIC, prints
the value of the sample whose labels include every LABEL=VALUE given, or
exits 2 if there is none.
"""
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\} (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def main():
    helped, typed, samples = set(), set(), []
    for n, line in enumerate(open(sys.argv[1]), 1):
        line = line.rstrip("\n")
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, f"line {n}: second HELP for {name}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("gauge", "counter"), f"line {n}: type {kind}"
            assert name in helped and name not in typed, f"line {n}: TYPE {name}"
            typed.add(name)
        else:
            m = SAMPLE.match(line)
            assert m, f"line {n} is not a sample: {line!r}"
            assert m.group(1) in typed, f"line {n}: {m.group(1)} has no TYPE"
            float(m.group(3))
            samples.append((m.group(1), dict(LABEL.findall(m.group(2))), m.group(3)))
    if len(sys.argv) < 3:
        return 0
    want = dict(a.split("=", 1) for a in sys.argv[3:])
    for name, labels, value in samples:
        if name == sys.argv[2] and all(labels.get(k) == v for k, v in want.items()):
            print(value)
            return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
