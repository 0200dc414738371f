"""Plan estimate, not a model of the array: barrel issue (docs/fpga.md, "What is missing").

Under barrel issue, context c may issue only in cycles t with t % 2 == c, and each
context runs whole inferences (every layer), so each context's issue decision has two
cycles.  This event model prices that rule on the same pipeline as ``pyhdl.sizing``:
a fold of layer 0 issues once its input beat was accepted in an earlier cycle, a later
layer's fold once every producer group it reads is written back (``writeback_latency``
cycles after that group's last fold; a step may issue in that cycle, as with the
countdown), beats arrive at full rate into two input slots, and a result is accepted
``drain_latency`` cycles after its last write-back.  The output slots are not modelled.

    python docs/barrel-estimate.py

prints, for the digits model, cycles per inference back to back and one isolated
inference under barrel issue beside ``pyhdl.sizing.schedule`` (the array as built).
"""

from pyhdl import sizing
from pyhdl.config import DEFAULT, SMALL

DIGITS = [(64, 32), (32, 10)]


def barrel(shapes, cfg, vectors: int) -> list[int]:
    """Accept cycle of each vector's last result under barrel issue."""
    W, D, P, S = sizing.writeback_latency(cfg), sizing.drain_latency(cfg), cfg.pe, cfg.simd
    Fs = [sizing.folds(i, cfg) for i, _ in shapes]
    Gs = [sizing.groups(o, cfg) for _, o in shapes]
    steps = [(l, g, f) for l in range(len(shapes)) for g in range(Gs[l]) for f in range(Fs[l])]
    pos, vec = [0, 0], [0, 1]           # per context: next step, its vector
    written = {}                         # (vector, layer, group) -> write-back cycle
    beats, slot_free, next_beat = {}, [0, 0], 0
    accepted = []

    def beat_cycles(v):
        nonlocal next_beat
        if v not in beats:
            start = max(next_beat, slot_free[v % 2])
            beats[v] = [start + k for k in range(Fs[0])]
            next_beat = start + Fs[0]
        return beats[v]

    for v in range(min(2, vectors)):
        beat_cycles(v)
    t = 0
    while len(accepted) < vectors:
        c, v = t % 2, vec[t % 2]
        if v < vectors:
            l, g, f = steps[pos[c]]
            if l == 0:
                ready = beat_cycles(v)[f] < t
            else:
                reads = {e // P for e in range(f * S, min((f + 1) * S, shapes[l][0]))}
                ready = all(written.get((v, l - 1, q), t + 1) <= t for q in reads)
            if ready:
                if f == Fs[l] - 1:
                    written[(v, l, g)] = t + W
                if (l, g, f) == (0, Gs[0] - 1, Fs[0] - 1):
                    slot_free[v % 2] = t + 1 + sizing.issue_stages()
                    if v + 2 < vectors:
                        beat_cycles(v + 2)
                pos[c] += 1
                if pos[c] == len(steps):
                    accepted.append(t + W + D)
                    pos[c], vec[c] = 0, vec[c] + 2
        t += 1
    return accepted


def main(vectors: int = 200) -> None:
    for name, cfg in (("8x8", DEFAULT), ("2x4", SMALL)):
        half = vectors // 2
        b, a = barrel(DIGITS, cfg, vectors), sizing.schedule(DIGITS, cfg, vectors)["accept"]
        print(f"digits {name}: back to back {(b[-1] - b[half - 1]) / (vectors - half):.1f} barrel, "
              f"{(a[-1] - a[half - 1]) / (vectors - half):.1f} built (ideal {sizing.ideal_cycles(DIGITS, cfg)}); "
              f"isolated {barrel(DIGITS, cfg, 1)[0]} barrel, {sizing.schedule(DIGITS, cfg, 1)['accept'][0]} built")


if __name__ == "__main__":
    main()
