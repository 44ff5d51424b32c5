"""torch.compile of blocks and networks (docs/compile.md): compiled vs eager outputs and gradients
for every integrator and each compilable gradient mode, no graph break (``fullgraph=True`` raises
at any), the modes that do not compile, and ``training.compile`` in the trainer (resume, keys).

Most cases compile with the ``aot_eager`` backend: TorchDynamo's capture and AOTAutograd's joint
forward/backward graph are what can break, and that backend runs both in about a second; one case
per model kind goes through the default backend (inductor's generated code).
"""

import json

import pytest
import torch

import stablenet as sn
from stablenet.conv_models import ConvNetSpec, build_image_classifier
from stablenet.specs import BlockSpec

from helpers import small_config

#: integrator → a dynamics it integrates (verlet: two-stream; leapfrog: Y'' = f)
PAIRS = {"euler": "single", "midpoint": "single", "rk3": "antisymmetric", "rk4": "single", "ab3": "parabolic",
         "verlet": "hamiltonian", "leapfrog": "parabolic"}
TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled_matches_eager(model, x, backend="aot_eager", loss=lambda out: out.square().sum()):
    """Compile with fullgraph=True (raises at any graph break) and compare output and every
    gradient (input and weights) with the eager module's."""
    def run(module):
        xi = x.detach().clone().requires_grad_(x.is_floating_point())
        model.zero_grad()
        out = module(xi)
        loss(out).backward()
        return out.detach(), [xi.grad] + [p.grad.clone() for p in model.parameters()]

    eager_out, eager_grads = run(model)
    out, grads = run(torch.compile(model, fullgraph=True, backend=backend))
    torch.testing.assert_close(out, eager_out, **TOL)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e, **TOL)


def block(method, gradient, *, controls="linear", steps=3, nt=2, width=4):
    return sn.ODEBlock(sn.dynamics.DYNAMICS[PAIRS[method]](width, nt=nt), T=1.0, steps=steps, method=method,
                       controls=controls, gradient=gradient)


@pytest.mark.parametrize("method", list(PAIRS))
def test_every_integrator_compiles_with_autograd_and_checkpoint(method):
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    # linear controls (interpolated stage weights) for autograd, the ResNet grid (nt = steps,
    # piecewise constant: views of the weights) for checkpoint
    compiled_matches_eager(block(method, "autograd"), x)
    torch._dynamo.reset()
    compiled_matches_eager(block(method, sn.Checkpoint(segment=2), controls="constant", nt=3), x)


@pytest.mark.parametrize("loop", ["scan", "unroll"])
@pytest.mark.parametrize("method", list(PAIRS))
def test_both_compiled_loops_equal_eager(method, loop):
    """compiled_loop="scan" (one step traced, looped) and "unroll" (every step traced) give the
    eager output and gradients, with and without gradients being recorded."""
    torch.manual_seed(5)
    b = block(method, "autograd", steps=4, nt=3)
    b.compiled_loop = loop
    x = torch.randn(3, 4)
    compiled_matches_eager(b, x)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(b, fullgraph=True, backend="aot_eager")(x), b(x), **TOL)


def captured_graphs(module, x):
    """The FX graphs TorchDynamo hands the backend for one forward + backward of ``module``."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch.compile(module, fullgraph=True, backend=backend)(x).square().sum().backward()
    return graphs


def scans(graph):
    return sum(node.target is torch.ops.higher_order.scan for node in graph.graph.nodes)


@pytest.mark.parametrize("method", list(PAIRS))
def test_scan_traces_one_step_whatever_the_number_of_steps(method):
    """The default compiled loop is one scan over the uniform steps: the traced graph (what
    inductor builds code for) has the same size for 8 and 64 steps (up to the start-up steps of
    ab3/leapfrog); unrolled, it grows with N."""
    x = torch.randn(2, 4)
    sizes = {}
    for loop in ("scan", "unroll"):
        for steps in (8, 64):
            torch._dynamo.reset()
            b = block(method, "autograd", steps=steps, nt=4)
            b.compiled_loop = loop
            (graph,) = captured_graphs(b, x)
            sizes[loop, steps] = len(graph.graph.nodes)
            assert scans(graph) == (loop == "scan")
    # equal up to the start-up steps' interpolation (a lerp where a stage time is not a control point)
    assert abs(sizes["scan", 8] - sizes["scan", 64]) <= 4
    assert sizes["unroll", 64] > 4 * sizes["unroll", 8] / 2


def test_auto_unrolls_short_solves_and_scans_long_ones():
    """compiled_loop="auto": unrolled up to UNROLL_UP_TO stage evaluations (N × stages), scanned beyond."""
    from stablenet.block import UNROLL_UP_TO

    x = torch.randn(2, 4)
    for method, steps, scanned in [("euler", UNROLL_UP_TO, False), ("euler", UNROLL_UP_TO + 1, True),
                                   ("rk4", UNROLL_UP_TO // 3, False), ("rk4", UNROLL_UP_TO // 3 + 1, True)]:
        torch._dynamo.reset()
        (graph,) = captured_graphs(block(method, "autograd", steps=steps, nt=2), x)
        assert scans(graph) == scanned, (method, steps)


def test_compiled_loop_is_checked():
    with pytest.raises(ValueError, match="compiled_loop must be one of"):
        sn.ODEBlock(sn.SingleLayer(2), T=1.0, steps=2, method="euler", compiled_loop="while")


@pytest.mark.parametrize("method", ["verlet", "leapfrog"])
def test_reversible_compiles_with_an_explicit_vjp(method):
    torch.manual_seed(1)
    compiled_matches_eager(block(method, "reversible", steps=4), torch.randn(3, 4))


def test_inductor_block_and_dense_classifier():
    """The default backend (generated C++), on the block and on the classifier around it."""
    torch.manual_seed(2)
    model = sn.ODEClassifier(2, 3, BlockSpec("antisymmetric", width=4, T=1.0, steps=2, method="euler").build())
    compiled_matches_eager(model, torch.randn(5, 2), backend="inductor",
                           loss=lambda s: torch.nn.functional.cross_entropy(s, torch.tensor([0, 1, 2, 0, 1])))


def test_inductor_scan_of_a_two_layer_verlet_block():
    """Inductor's code for the scanned loop: a two-layer right-hand side (which torch 2.13's
    inductor miscompiled inside a scan while the update was ``add`` with ``alpha``) and Verlet's
    two streams (whose scan needs fresh carry tensors)."""
    torch.manual_seed(6)
    compiled_matches_eager(sn.ODEBlock(sn.DoubleLayer(4, nt=3), T=1.0, steps=5, method="euler",
                                       compiled_loop="scan"), torch.randn(3, 4), backend="inductor")
    torch._dynamo.reset()
    verlet = block("verlet", "autograd", steps=5, nt=3)
    verlet.compiled_loop = "scan"
    compiled_matches_eager(verlet, torch.randn(3, 4), backend="inductor")


@pytest.mark.parametrize("dynamics,method,gradient,normalization", [
    ("conv_parabolic", "euler", "autograd", "batch"),
    ("conv_hamiltonian", "verlet", "checkpoint", "instance"),
])
def test_conv_network_compiles(dynamics, method, gradient, normalization):
    torch.manual_seed(3)
    spec = ConvNetSpec(in_channels=1, n_classes=3, T=1.0, steps=2, method=method, widths=(4, 6), dynamics=dynamics,
                       normalization=normalization, gradient=gradient)
    compiled_matches_eager(build_image_classifier(spec, (1, 8, 8)), torch.randn(4, 64))


def test_data_dependent_checks_are_skipped_when_compiled_and_static_ones_stay():
    b = block("euler", "autograd")
    compiled = torch.compile(b, fullgraph=True, backend="aot_eager")
    bad = torch.randn(2, 4)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):
        b(bad)                                           # eager: checked
    assert torch.isnan(compiled(bad)).any()              # compiled: not (a data-dependent branch)
    with pytest.raises(Exception, match="expected width 4"):
        compiled(torch.randn(2, 5))                      # shape: checked while tracing
    with pytest.raises(Exception, match="dtype torch.float64"):
        compiled(torch.randn(2, 4, dtype=torch.float64))  # dtype: checked while tracing


@pytest.mark.parametrize("why,make", [
    ("adjoint", lambda: block("rk4", "adjoint")),                                  # backward: autograd.grad
    ("reversible, no explicit VJP", lambda: sn.ODEBlock(                           # normalization: autograd.grad
        sn.dynamics.DYNAMICS["conv_second_order"](2, nt=1, normalization="instance"), T=1.0, steps=2,
        method="leapfrog", gradient="reversible")),
])
def test_modes_that_do_not_compile_break_the_graph(why, make):
    """fullgraph=True refuses them; plain torch.compile runs them eagerly at a graph break."""
    torch.manual_seed(4)
    b = make()
    x = torch.randn(2, 4) if b.dynamics.feature_dim == -1 else torch.randn(2, 2, 4, 4)
    with pytest.raises(Exception, match="autograd.grad|side effect"):
        torch.compile(b, fullgraph=True, backend="aot_eager")(x).sum().backward()
    torch._dynamo.reset()
    out = torch.compile(b, backend="aot_eager")(x)
    torch.testing.assert_close(out, b(x), **TOL)


def test_training_compile_resumes_and_saves_plain_keys(tmp_path, monkeypatch):
    """training.compile = true: the history has compile_s, checkpoints and best weights hold the
    module's own keys (no ``_orig_mod.``), and a run killed after epoch 1 resumes to the
    uninterrupted run's metrics and history (compile_s and wall times aside)."""
    from safetensors.torch import load_file

    from _resume import interrupted_run_resumes_exactly

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_(model, backend="aot_eager", **kw))
    cfg = small_config(epochs=2, compile=True)

    def check(saved, run):
        assert not [k for k in saved["model"] if "_orig_mod" in k]
        assert not [k for k in load_file(run / "best.safetensors") if "_orig_mod" in k]

    histories = {}
    from stablenet.app import runs
    write = runs.write_history

    def strip_compile_times(out_dir, history):
        histories[out_dir] = [dict(r) for r in history]
        write(out_dir, [{k: v for k, v in r.items() if k != "compile_s"} for r in history])

    monkeypatch.setattr(runs, "write_history", strip_compile_times)
    interrupted_run_resumes_exactly(cfg, tmp_path, monkeypatch, stop_after=1, check_checkpoint=check)
    reference = histories[tmp_path / "reference"]
    assert reference[0]["compile_s"] > 0 and reference[1]["compile_s"] == 0.0
    assert json.loads((tmp_path / "reference" / "history.json").read_text())[0]["epoch"] == 1


def test_compile_is_refused_with_newton_optimizers():
    with pytest.raises(Exception, match="training.compile"):
        small_config(compile=True, optimizer="gauss_newton")


def test_training_compile_with_inductor(tmp_path):
    """The trainer's compile (no fullgraph, default inductor backend) lowers a scanned loop:
    inductor of torch 2.13 needs ``capture_scalar_outputs`` for it outside fullgraph, which the
    trainer sets around its compiled steps (``training.compile_settings``); the run matches the
    eager run's loss to float32 round-off."""
    from stablenet.app.training import train

    long = {"model.blocks.0.steps": 65}  # 130 Verlet stage evaluations: scanned (compiled_loop="auto")
    eager = train(small_config(long, epochs=1), tmp_path / "eager", progress=False)
    compiled = train(small_config(long, epochs=1, compile=True), tmp_path / "compiled", progress=False)
    assert compiled["val_loss"] == pytest.approx(eager["val_loss"], rel=1e-4)
