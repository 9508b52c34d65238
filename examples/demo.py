"""The main job: a long run that survives Ctrl-C and SIGTERM, then every format.

    make demo            # runs; Ctrl-C (or kill -TERM) stops it with a checkpoint
    make demo            # again: resumes where it stopped and finishes

The seed network (two Izhikevich populations, pop0 -> pop1 with STDP) is
simulated on the embedded checkpoint.Network with a checkpoint every 500 ms
of simulated time.  At the end the final state is saved in every format and
each file is loaded into a freshly built network in a new process; a picture
of the weights and of the spikes of the whole run (its recordings, which
survive every stop and resume: ``recordings=True``) is written to
demo-output/demo.png.
"""

import logging
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
import izhikevich_stdp  # noqa: E402

OUT = os.environ.get("DEMO_OUTPUT", "demo-output")
SIM_MS = float(os.environ.get("DEMO_MS", 10_000))
FORMATS = ["h5", "npz", "mat", "txt", "txt.gz"]
log = logging.getLogger("demo")


def build():
    """The seed network, with a spike recorder on each population."""
    net = izhikevich_stdp.build()
    net.add_spike_recorder("spikes0", "pop0")
    net.add_spike_recorder("spikes1", "pop1")
    return net


def simulate(net, ckpt, steps):
    """Run to ``steps``; the recorders' spikes go into the checkpoint folder
    as one segment per checkpoint."""
    from tqdm import tqdm

    with tqdm(total=steps, initial=net.step, unit="step", desc="simulating", mininterval=0.5, disable=None) as bar:
        while net.step < steps:
            izhikevich_stdp.step(net)
            net.record()
            bar.update(1)
            ckpt.maybe_save()


def reload_in_fresh_process(paths):
    """Load each file into a freshly built network in a new Python process."""
    code = (
        "import sys, warnings; sys.path.insert(0, 'examples')\n"
        "import checkpoint, izhikevich_stdp\n"
        "for path in sys.argv[1:]:\n"
        "    net = izhikevich_stdp.build(seed=1)   # other random connectivity: rebuilt from the file\n"
        "    report = checkpoint.load(path, net, strict=True)\n"
        "    w = net.projections['proj0'].w\n"
        "    print(f'  {path:32s} {len(report.restored):3d} arrays, t = {net.time:8.1f} ms, '\n"
        "          f'mean w = {w.mean():.6f}, next noise draw = {net.rng.standard_normal():+.6f}')\n"
    )
    subprocess.run([sys.executable, "-c", code, *paths], check=True)


def picture(net, rec, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = izhikevich_stdp.build().projections["proj0"].w
    after = net.projections["proj0"].w
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bins = np.linspace(0, net.projections["proj0"].w_max, 60)
    # outlines, not translucent bars: overlapping bars would mix into a third colour
    axes[0].hist(before, bins, histtype="step", linewidth=1.5, label="before (built)")
    axes[0].hist(after, bins, histtype="step", linewidth=1.5, label=f"after {net.time / 1000:.1f} s of STDP")
    axes[0].set(title="proj0 weights (STDP, pop0 -> pop1)", xlabel="w (synaptic weight)", ylabel="synapses")
    axes[0].legend()
    image = axes[1].imshow(
        net.projections["proj0"].to_scipy("w")[:, :200].toarray(),
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
    )
    axes[1].set(
        title="final weights (pop1 x first 200 of pop0; 0: no synapse)", xlabel="pre neuron", ylabel="post neuron"
    )
    fig.colorbar(image, ax=axes[1], label="w (synaptic weight)")
    # the whole run's spikes, from its recordings: the same whether it was stopped and resumed or not
    times = np.concatenate([rec["spikes0"]["t"], rec["spikes1"]["t"]]) / 1000.0
    ranks = np.concatenate([rec["spikes0"]["i"], 800 + rec["spikes1"]["i"]])
    axes[2].scatter(times, ranks, s=0.3, linewidths=0, rasterized=True, c=np.where(ranks < 800, "tab:blue", "tab:red"))
    axes[2].set(
        title=f"spikes of the whole run ({len(times)}; red: pop1)",
        xlabel="t (s)",
        ylabel="neuron",
        xlim=(0, net.time / 1000.0),
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.makedirs(OUT, exist_ok=True)
    net = build()
    steps = int(round(SIM_MS / net.dt))
    folder = os.path.join(OUT, "checkpoints")
    with checkpoint.Checkpointer(
        folder, net, every_ms=500.0, keep=3, keep_every_ms=5000.0, recordings=True
    ) as ckpt:  # Ctrl-C, SIGTERM, SIGUSR1 stop it
        report = ckpt.restore_latest()
        if report is None:
            print(f"starting a {SIM_MS / 1000:g} s simulation; Ctrl-C stops it with a checkpoint")
        elif net.step >= steps:
            print(
                f"the run finished earlier (t = {net.time:.0f} ms): its results are in {OUT}/; "
                f"rm -rf {OUT} to start over"
            )
            return 0
        else:
            print(f"resuming from {os.path.basename(ckpt.latest())} at t = {net.time:.0f} ms")
        try:
            simulate(net, ckpt, steps)
        except checkpoint.Interrupted as stop:
            print(f"\nstopped at t = {net.time:.0f} ms; checkpoint {stop.path}\nrun 'make demo' again to resume")
            return 0
        ckpt.save(skip_if_saved=True)
    print(
        f"finished: t = {net.time:.0f} ms, checkpoints kept: "
        f"{', '.join(os.path.basename(p) for p in ckpt.checkpoints())}"
    )
    paths = []
    for fmt in FORMATS:
        path = os.path.join(OUT, f"final.{fmt}")
        checkpoint.save(path, net, metadata={"demo": True})
        paths.append(path)
    checkpoint.save_parameters(os.path.join(OUT, "parameters.json"), net)
    print("final state saved in every format; reloading each into a fresh network in a new process:")
    reload_in_fresh_process(paths)
    print(
        f"expected:                            mean w = {net.projections['proj0'].w.mean():.6f}, "
        f"next noise draw = {net.rng.standard_normal():+.6f}"
    )
    png = os.path.join(OUT, "demo.png")
    picture(net, checkpoint.recordings(folder), png)
    print(f"picture: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
