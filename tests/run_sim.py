"""A long run under a Checkpointer, killed and restarted by test_resume.py.

usage: run_sim.py FOLDER STEPS BACKGROUND FINAL [EVERY] [FORMAT]
Exit status 3 means a signal stopped it with a checkpoint.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))

import checkpoint  # noqa: E402
import izhikevich_stdp  # noqa: E402


def main(folder, steps, background, final, every=25, format="h5"):
    net = izhikevich_stdp.build(seed=7, n_exc=400, n_inh=100)
    with checkpoint.Checkpointer(folder, net, every_steps=every, keep=2, background=background, format=format) as ckpt:
        ckpt.restore_latest()
        print("ready", net.step, flush=True)
        try:
            while net.step < steps:
                izhikevich_stdp.step(net)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            print("interrupted", stop.path, flush=True)
            return 3
    checkpoint.save(final, net)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    folder, steps, background, final = sys.argv[1:5]
    extra = sys.argv[5:]
    sys.exit(
        main(
            folder,
            int(steps),
            background == "1",
            final,
            int(extra[0]) if extra else 25,
            extra[1] if len(extra) > 1 else "h5",
        )
    )
