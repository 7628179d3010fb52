"""The engine with the real pieces: oracle generator, synthetic head model, the head-model prior sampler."""

import dataclasses

import torch

from omnibench.protocol import SetSize, get_protocol


def test_oracle_through_the_engine(fresh_cache):
    from omnibench.data.synth import sample_controls
    from omnibench.evaluation import EvalContext, evaluate
    from omnibench.generators.resolve import resolve_generator

    fresh_cache()
    p = dataclasses.replace(get_protocol("quick@1"), name="oracle-mini", main=SetSize(6), views=SetSize(2, 3),
                            expr=SetSize(2, 3))
    gen, block = resolve_generator("oracle")
    ctx = EvalContext(p, gen, block, progress=False, batch_size=4)
    main = ctx.samples("main")
    assert main.images.shape == (6, 3, 64, 64) and main.depth is not None
    assert ctx.control_source().describe()["sampler"] == "omnibench.data.synth.sample_controls"
    # the prior's camera is used for main (joint draw), and each sample has its own key
    head = ctx.head_model()
    from omnibench.evaluation.draws import index_seed

    c = sample_controls(1, index_seed(p.seed, "main", "flame", 3), head, 0)
    assert torch.allclose(main.controls.camera[3], c.camera[0]) and torch.equal(main.controls.shape[3], c.shape[0])
    r = evaluate("oracle", protocol=p, metrics=["tests.omnibench.fakes:MeanPixel", "tests.omnibench.fakes:GroupSpread"],
                 progress=False, batch_size=2)
    assert r["metrics"]["mean-pixel"]["n"] == 6 and r["sampling"]["main"]["controls"]["head_sha256"]
    assert "generate/main" not in r["timings"]  # reused the context's cache entry (same key)
